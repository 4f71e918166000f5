/*
 * Embedding hotsplit's engine: load a model, look at its cuts, run it as two ranges the way
 * two devices would, and check the halves agree with the whole. Shown in README.md; built and
 * run by the tests so the README's example cannot rot.
 * Usage: example_embed MODEL.onnx
 */
#include <hotsplit/core.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s MODEL.onnx\n", argv[0]);
        return 2;
    }
    hs_error err;
    hs_graph *g;
    if (hs_graph_load_onnx(argv[1], NULL, &g, &err) != HS_OK) {
        fprintf(stderr, "%s\n", err.msg); /* e.g. "m.onnx: node 'x' (Foo): unsupported operator" */
        return 1;
    }
    int n = hs_graph_node_count(g);

    /* The cheapest cut in the middle half of the network. */
    int best = n / 4;
    for (int k = n / 4; k < 3 * n / 4; k++)
        if (hs_graph_cut_bytes(g, k) < hs_graph_cut_bytes(g, best))
            best = k;
    hs_node_info ni;
    hs_graph_node_info(g, best, &ni);
    printf("%d nodes, %lld params; cut after node %d (%s): %lld bytes\n", n,
           (long long)hs_graph_params(g), best, ni.name, (long long)ni.cut_bytes);

    /* Input: zeros of the model's input shape. */
    hs_tensor in;
    hs_graph_input(g, 0, &in);
    in.data = calloc((size_t)hs_tensor_numel(&in), sizeof(float));

    /* Device A runs [0, best], device B the rest; the cut's tensors travel between them. */
    hs_exec *a = NULL, *b = NULL, *whole = NULL;
    hs_tensor cut[64], out_split, out_whole;
    if (hs_exec_new(g, 0, best + 1, &a, &err) != HS_OK ||
        hs_exec_new(g, best + 1, n, &b, &err) != HS_OK ||
        hs_exec_new(g, 0, n, &whole, &err) != HS_OK ||
        hs_exec_run(a, &in, 1, cut, hs_exec_output_count(a), &err) != HS_OK ||
        hs_exec_run(b, cut, hs_exec_output_count(a), &out_split, 1, &err) != HS_OK ||
        hs_exec_run(whole, &in, 1, &out_whole, 1, &err) != HS_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    int same = memcmp(out_split.data, out_whole.data, hs_tensor_nbytes(&out_whole)) == 0;
    printf("split output %s the single-device output\n", same ? "equals" : "DIFFERS FROM");

    hs_exec_free(a);
    hs_exec_free(b);
    hs_exec_free(whole);
    free(in.data);
    hs_graph_free(g);
    return same ? 0 : 1;
}
