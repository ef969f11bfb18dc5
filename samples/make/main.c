/* Runs samples/simple_gru.onnx, generated into gen/ by the Makefile beside this file, on a batch of
 * 2 sequences of 5 steps with the same input as samples/simple_rnn_main.c and a zero hidden state,
 * and prints every output row as `output[b]: values`. tests/test_build_integration.py builds it
 * with make and compares the rows with onnxruntime.
 */
#include <stdio.h>

#include "simple_gru.h"

enum { BATCH = 2, SEQ = 5, INPUT = 10, HIDDEN = 20, OUTPUT = 5 };

int main(void)
{
    static float input[BATCH][SEQ][INPUT], hidden[1][BATCH][HIDDEN];
    static float output[BATCH][OUTPUT], next_hidden[1][BATCH][HIDDEN];

    for (int b = 0; b < BATCH; b++)
        for (int t = 0; t < SEQ; t++)
            for (int i = 0; i < INPUT; i++)
                input[b][t][i] = (float)(((b * SEQ + t) * INPUT + i) % 7) * 0.25f - 0.75f;

    if (simple_gru_run(BATCH, SEQ, &input[0][0][0], &hidden[0][0][0], &output[0][0],
                       &next_hidden[0][0][0]) != SIMPLE_GRU_OK) {
        fprintf(stderr, "simple_gru_run refused the dimensions\n");
        return 1;
    }
    for (int b = 0; b < BATCH; b++) {
        printf("output[%d]:", b);
        for (int o = 0; o < OUTPUT; o++)
            printf(" %.9g", output[b][o]);
        printf("\n");
    }
    for (int b = 0; b < BATCH; b++) {
        printf("next_hidden[%d]:", b);
        for (int h = 0; h < HIDDEN; h++)
            printf(" %.9g", next_hidden[0][b][h]);
        printf("\n");
    }
    return 0;
}
