/*
 * CurveZMQ key files: "public: <Z85>\nsecret: <Z85>\n" (secret omitted in a file handed to
 * peers). Written with mode 0600 through a temporary file and a rename, so a reader never sees
 * half a key and the secret is never world-readable.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "transport_impl.h"

hs_status hs_curve_keygen(const char *path, hs_error *err)
{
    char pub[41], sec[41], tmp[4096];
    if (zmq_curve_keypair(pub, sec) != 0)
        return hs__terr(err, HS_ERR_UNSUPPORTED, "%s: zmq_curve_keypair: %s", path,
                        zmq_strerror(errno));
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
        return hs__terr(err, HS_ERR_INVALID, "%s: path too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return hs__terr(err, HS_ERR_IO, "%s: %s", tmp, strerror(errno));
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(tmp);
        return hs__terr(err, HS_ERR_IO, "%s: %s", tmp, strerror(errno));
    }
    fprintf(f, "public: %s\nsecret: %s\n", pub, sec);
    bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return hs__terr(err, HS_ERR_IO, "%s: %s", path, strerror(e));
    }
    return HS_OK;
}

/* "<label>: <40 Z85 chars>" at line into key. */
static bool key_line(const char *line, const char *label, char key[41])
{
    size_t n = strlen(label);
    if (strncmp(line, label, n) != 0 || line[n] != ':')
        return false;
    line += n + 1;
    while (*line == ' ' || *line == '\t')
        line++;
    size_t len = strcspn(line, " \t\r\n");
    uint8_t raw[32];
    char text[41];
    if (len != 40)
        return false;
    memcpy(text, line, 40);
    text[40] = '\0';
    if (!zmq_z85_decode(raw, text))
        return false;
    memcpy(key, text, 41);
    return true;
}

hs_status hs_curve_load(const char *path, char public_key[41], char secret_key[41],
                        hs_error *err)
{
    char line[512];
    int lineno = 0;
    public_key[0] = secret_key[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return hs__terr(err, HS_ERR_IO, "%s: %s", path, strerror(errno));
    while (fgets(line, sizeof line, f)) {
        lineno++;
        const char *s = line + strspn(line, " \t");
        if (*s == '#' || *s == '\n' || *s == '\r' || *s == '\0')
            continue;
        if (strncmp(s, "public:", 7) == 0 && !public_key[0] && key_line(s, "public", public_key))
            continue;
        if (strncmp(s, "secret:", 7) == 0 && !secret_key[0] && key_line(s, "secret", secret_key))
            continue;
        fclose(f);
        public_key[0] = secret_key[0] = '\0';
        return hs__terr(err, HS_ERR_PARSE,
                        "%s:%d: expected 'public: KEY' or 'secret: KEY' once each, KEY being 40 "
                        "Z85 characters",
                        path, lineno);
    }
    fclose(f);
    if (!public_key[0]) {
        secret_key[0] = '\0';
        return hs__terr(err, HS_ERR_PARSE, "%s: no 'public:' key", path);
    }
    char derived[41];
    if (secret_key[0] && zmq_curve_public(derived, secret_key) == 0 &&
        strcmp(derived, public_key) != 0) {
        public_key[0] = secret_key[0] = '\0';
        return hs__terr(err, HS_ERR_PARSE, "%s: the public key is not the secret key's", path);
    }
    return HS_OK;
}
