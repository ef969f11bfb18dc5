/* A C program calling the code onnx2src generates for samples/simple_rnn.onnx:
 *
 *   onnx2src samples/simple_rnn.onnx --target c -o out --max-dim batch=2
 *   cc -std=c99 -O2 -Iout samples/simple_rnn_main.c out/simple_rnn.c -lm -o simple_rnn
 *   ./simple_rnn
 *
 * It runs a batch of 2 sequences of 5 steps from a zero hidden state and prints `output` and
 * `next_hidden`, one row per line (the batch bound is 1 by default, hence --max-dim). samples/demo.py prints the same rows from onnxruntime.
 */
#include <stdio.h>

#include "simple_rnn.h"

enum { BATCH = 2, SEQ = 5, INPUT = 10, HIDDEN = 20, OUTPUT = 5 };

int main(void)
{
    static float input[BATCH][SEQ][INPUT], hidden[1][BATCH][HIDDEN];
    static float output[BATCH][OUTPUT], next_hidden[1][BATCH][HIDDEN];

    /* the same deterministic input as samples/demo.py: values in [-0.75, 0.75] */
    for (int b = 0; b < BATCH; b++)
        for (int t = 0; t < SEQ; t++)
            for (int i = 0; i < INPUT; i++)
                input[b][t][i] = (float)(((b * SEQ + t) * INPUT + i) % 7) * 0.25f - 0.75f;

    int status = simple_rnn_run(BATCH, SEQ, &input[0][0][0], &hidden[0][0][0],
                                &output[0][0], &next_hidden[0][0][0]);
    if (status != SIMPLE_RNN_OK) {
        fprintf(stderr, "simple_rnn_run failed: %d\n", status);
        return 1;
    }
    for (int b = 0; b < BATCH; b++) {
        printf("output[%d]:", b);
        for (int o = 0; o < OUTPUT; o++)
            printf(" %.9g", output[b][o]);
        printf("\n");
    }
    for (int b = 0; b < BATCH; b++) {
        printf("next_hidden[0][%d]:", b);
        for (int h = 0; h < HIDDEN; h++)
            printf(" %.9g", next_hidden[0][b][h]);
        printf("\n");
    }
    return 0;
}
