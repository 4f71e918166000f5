/* Small helpers every benchmark program uses: a monotonic clock, medians of samples and their
 * confidence intervals. */
#ifndef HOTSPLIT_BENCH_UTIL_H
#define HOTSPLIT_BENCH_UTIL_H

#include <math.h>
#include <stdlib.h>
#include <time.h>

/* Seconds on the monotonic clock. */
static inline double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* qsort comparator for doubles, ascending. */
static inline int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts v and returns its median (the mean of the middle two for even n; NAN for none). */
static inline double median(double *v, int n)
{
    if (n == 0)
        return NAN;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* A 95% confidence interval for the median of v[0..n) (n >= 1), by the percentile bootstrap:
 * 2000 resamples of n values with replacement, drawn by a fixed-seed generator so that a run's
 * interval is reproducible from its samples. v is left unchanged. */
static inline void median_ci(const double *v, int n, double *lo, double *hi)
{
    enum { RESAMPLES = 2000 };
    double *medians = malloc(RESAMPLES * sizeof *medians), *draw = malloc((size_t)n * sizeof *draw);
    if (!medians || !draw) {
        *lo = *hi = NAN;
        free(medians);
        free(draw);
        return;
    }
    unsigned long long s = 0x9E3779B97F4A7C15ull;
    for (int b = 0; b < RESAMPLES; b++) {
        for (int i = 0; i < n; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            draw[i] = v[(s >> 33) % (unsigned long long)n];
        }
        medians[b] = median(draw, n);
    }
    qsort(medians, RESAMPLES, sizeof *medians, cmp_double);
    *lo = medians[RESAMPLES * 25 / 1000];
    *hi = medians[RESAMPLES * 975 / 1000 - 1];
    free(medians);
    free(draw);
}

#endif
