/*
 * A UMAMI 1.0 test library with two colour flows: q qbar -> g g at tree level (massless),
 * written from the UMAMI 1.0 interface description for mcint's tests.
 *
 * Particle order: q (incoming), qbar (incoming), g, g. Input ALPHA_S is required.
 * MATRIX_ELEMENT: the spin- and colour-averaged |M|^2 including the 1/2 symmetry factor of the
 * identical gluons (as MadGraph's IDEN does):
 *     |M|^2 = 1/2 g^4 [ 32/27 (t^2 + u^2) / (t u) - 8/3 (t^2 + u^2) / s^2 ],  g^2 = 4 pi alpha_s
 * with t = (p1 - p3)^2, u = (p1 - p4)^2 (Ellis, Stirling, Webber, table 7.1).
 * COLOR_INDEX: two flows (COLOR_COUNT 2), drawn with RANDOM_COLOR by the weights
 *     w0 = 16/27 u/t - 4/3 u^2/s^2   (flow 0: the quark's colour goes to gluon 3,
 *                                      tags q (501,0) qbar (0,502) g3 (501,503) g4 (503,502))
 *     w1 = 16/27 t/u - 4/3 t^2/s^2   (flow 1: the quark's colour goes to gluon 4)
 * (w0 + w1 = |M|^2 / g^4; the split is Pythia's for q qbar -> g g, both weights positive).
 * No DIAGRAM_COUNT, HELICITY_COUNT or MASSES metadata; no DIAGRAM_AMP2 output.
 */
#include <math.h>
#include <stddef.h>

enum { S_SUCCESS, S_ERROR, S_NOT_IMPLEMENTED, S_UNSUPPORTED_INPUT, S_UNSUPPORTED_OUTPUT,
       S_UNINITIALIZED_META, S_UNSUPPORTED_META, S_MISSING_INPUT };
enum { M_DEVICE, M_PARTICLE_COUNT, M_DIAGRAM_COUNT, M_HELICITY_COUNT, M_COLOR_COUNT, M_MASSES };
enum { I_MOMENTA, I_ALPHA_S, I_FLAVOR_INDEX, I_RANDOM_COLOR, I_RANDOM_HELICITY,
       I_RANDOM_DIAGRAM, I_HELICITY_INDEX, I_DIAGRAM_INDEX, I_CHANNEL_INDEX };
enum { O_MATRIX_ELEMENT, O_DIAGRAM_AMP2, O_COLOR_INDEX, O_HELICITY_INDEX, O_DIAGRAM_INDEX,
       O_GPU_STREAM };

#define NPART 4

int umami_get_meta(int key, void *result) {
    switch (key) {
    case M_DEVICE: *(int *)result = 0; return S_SUCCESS;
    case M_PARTICLE_COUNT: *(int *)result = NPART; return S_SUCCESS;
    case M_COLOR_COUNT: *(int *)result = 2; return S_SUCCESS;
    default: return S_UNSUPPORTED_META;
    }
}

static int instance;

int umami_initialize(void **handle, const char *param_card_path) {
    (void)param_card_path;
    *handle = &instance;
    return S_SUCCESS;
}

int umami_free(void *handle) {
    (void)handle;
    return S_SUCCESS;
}

static double dot(const double *a, const double *b) {
    return a[0] * b[0] - a[1] * b[1] - a[2] * b[2] - a[3] * b[3];
}

int umami_matrix_element(void *handle, size_t count, size_t stride, size_t offset,
                         size_t input_count, const int *input_keys, const void *const *inputs,
                         size_t output_count, const int *output_keys, void *const *outputs) {
    (void)handle;
    const double *mom = NULL, *alpha_s = NULL, *r_col = NULL;
    for (size_t k = 0; k < input_count; ++k) {
        switch (input_keys[k]) {
        case I_MOMENTA: mom = inputs[k]; break;
        case I_ALPHA_S: alpha_s = inputs[k]; break;
        case I_RANDOM_COLOR: r_col = inputs[k]; break;
        case I_FLAVOR_INDEX: case I_RANDOM_HELICITY: case I_RANDOM_DIAGRAM: break;
        default: return S_UNSUPPORTED_INPUT;
        }
    }
    if (!mom || !alpha_s) return S_MISSING_INPUT;
    double *me = NULL;
    int *col_out = NULL;
    for (size_t k = 0; k < output_count; ++k) {
        switch (output_keys[k]) {
        case O_MATRIX_ELEMENT: me = outputs[k]; break;
        case O_COLOR_INDEX: col_out = outputs[k]; break;
        default: return S_UNSUPPORTED_OUTPUT;
        }
    }
    for (size_t e = offset; e < offset + count; ++e) {
        double pv[NPART][4];
        for (int i = 0; i < NPART; ++i)
            for (int c = 0; c < 4; ++c) pv[i][c] = mom[stride * (NPART * c + i) + e];
        double s = 2 * dot(pv[0], pv[1]), t = -2 * dot(pv[0], pv[2]),
               u = -2 * dot(pv[0], pv[3]);
        double g2 = 4.0 * M_PI * alpha_s[e];
        double w0 = 16.0 / 27.0 * u / t - 4.0 / 3.0 * u * u / (s * s);
        double w1 = 16.0 / 27.0 * t / u - 4.0 / 3.0 * t * t / (s * s);
        if (me) me[e] = 0.5 * g2 * g2 * 2.0 * (w0 + w1);
        if (col_out) col_out[e] = (r_col ? r_col[e] : 0.5) * (w0 + w1) < w0 ? 0 : 1;
    }
    return S_SUCCESS;
}
