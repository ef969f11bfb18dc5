/* Runs two generated models in one program: samples/simple_rnn.onnx (as simple_rnn) and
 * samples/simple_lstm.onnx (as lstm_model), on a batch of 2 sequences of 5 steps with the same
 * input as samples/simple_rnn_main.c, and prints every output row as `model output[b]: values`.
 * tests/test_build_integration.py builds it with CMake and compares the rows with onnxruntime.
 */
#include <stdio.h>

#include "lstm_model.h"
#include "simple_rnn.h"

enum { BATCH = 2, SEQ = 5, INPUT = 10, HIDDEN = 20, OUTPUT = 5 };

static void print_rows(const char *what, const float *rows, int count, int width)
{
    for (int r = 0; r < count; r++) {
        printf("%s[%d]:", what, r);
        for (int i = 0; i < width; i++)
            printf(" %.9g", rows[r * width + i]);
        printf("\n");
    }
}

int main(void)
{
    static float input[BATCH][SEQ][INPUT], hidden[1][BATCH][HIDDEN];
    static float rnn_output[BATCH][OUTPUT], next_hidden[1][BATCH][HIDDEN], lstm_output[BATCH][OUTPUT];

    for (int b = 0; b < BATCH; b++)
        for (int t = 0; t < SEQ; t++)
            for (int i = 0; i < INPUT; i++)
                input[b][t][i] = (float)(((b * SEQ + t) * INPUT + i) % 7) * 0.25f - 0.75f;

    if (simple_rnn_run(BATCH, SEQ, &input[0][0][0], &hidden[0][0][0], &rnn_output[0][0],
                       &next_hidden[0][0][0]) != SIMPLE_RNN_OK
        || lstm_model_run(BATCH, SEQ, &input[0][0][0], &lstm_output[0][0]) != LSTM_MODEL_OK) {
        fprintf(stderr, "a model refused the dimensions\n");
        return 1;
    }
    print_rows("simple_rnn output", &rnn_output[0][0], BATCH, OUTPUT);
    print_rows("simple_rnn next_hidden", &next_hidden[0][0][0], BATCH, HIDDEN);
    print_rows("lstm_model output", &lstm_output[0][0], BATCH, OUTPUT);
    return 0;
}
