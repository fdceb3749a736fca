/*
 * A UMAMI 1.0 test library: f fbar -> l- l+ through gamma and Z (massless fermions, tree level),
 * written from the UMAMI 1.0 interface description for mcint's tests.
 *
 * Particle order: f (incoming, along +z), fbar (incoming), l-, l+. Two diagrams (s-channel
 * photon and Z). The incoming fermion is chosen by FLAVOR_INDEX: 0 = electron (the default,
 * e+ e- -> mu+ mu-), 1 = up quark, 2 = down quark; quarks get the colour average 1/3.
 *
 * Build switches for the error tests:
 *   -DFAIL_STATUS=k   umami_matrix_element returns status k
 *   -DFAIL_INIT=k     umami_initialize returns status k
 *   -DRETURN_NAN      the matrix element of every third event is NaN
 *   -DNO_FREE         umami_free is not exported
 *   -DNO_MASSES       UMAMI_META_MASSES is unsupported
 *   -DNO_AMP2         no DIAGRAM_COUNT meta and no DIAGRAM_AMP2 output (priors fall back)
 *   -DBAD_COUNT       UMAMI_META_HELICITY_COUNT gives -1 (metadata that is not a count)
 *
 * Colour: one colour flow (COLOR_INDEX 0: the q qbar pair forms one line, leptons colourless).
 * Helicities (HELICITY_INDEX, chosen with RANDOM_HELICITY by each configuration's share of
 * |M|^2), as (f, fbar, l-, l+): 0 = (-1, +1, -1, +1), 1 = (+1, -1, +1, -1),
 * 2 = (-1, +1, +1, -1), 3 = (+1, -1, -1, +1); massless fermions, so fbar and l+ carry the
 * opposite helicity of f and l-.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    S_SUCCESS, S_ERROR, S_NOT_IMPLEMENTED, S_UNSUPPORTED_INPUT, S_UNSUPPORTED_OUTPUT,
    S_UNINITIALIZED_META, S_UNSUPPORTED_META, S_MISSING_INPUT
} Status;
enum { M_DEVICE, M_PARTICLE_COUNT, M_DIAGRAM_COUNT, M_HELICITY_COUNT, M_COLOR_COUNT, M_MASSES };
enum {
    I_MOMENTA, I_ALPHA_S, I_FLAVOR_INDEX, I_RANDOM_COLOR, I_RANDOM_HELICITY, I_RANDOM_DIAGRAM,
    I_HELICITY_INDEX, I_DIAGRAM_INDEX, I_CHANNEL_INDEX
};
enum {
    O_MATRIX_ELEMENT, O_DIAGRAM_AMP2, O_COLOR_INDEX, O_HELICITY_INDEX, O_DIAGRAM_INDEX,
    O_GPU_STREAM
};

#define NPART 4
#define NDIAG 2
#define NHEL 4

typedef struct {
    double alpha, sw2, mz, wz;
} Params;

static const double CHARGE[3] = {-1.0, 2.0 / 3.0, -1.0 / 3.0};
static const double T3[3] = {-0.5, 0.5, -0.5};
static const double COLOR_AVG[3] = {1.0, 1.0 / 3.0, 1.0 / 3.0};

Status umami_get_meta(int key, void *result) {
    switch (key) {
    case M_DEVICE: *(int *)result = 0; return S_SUCCESS;
    case M_PARTICLE_COUNT: *(int *)result = NPART; return S_SUCCESS;
#ifndef NO_AMP2
    case M_DIAGRAM_COUNT: *(int *)result = NDIAG; return S_SUCCESS;
#endif
#ifdef BAD_COUNT
    case M_HELICITY_COUNT: *(int *)result = -1; return S_SUCCESS;
#else
    case M_HELICITY_COUNT: *(int *)result = NHEL; return S_SUCCESS;
#endif
    case M_COLOR_COUNT: *(int *)result = 1; return S_SUCCESS;
#ifndef NO_MASSES
    case M_MASSES:
        for (int i = 0; i < NPART; ++i) ((double *)result)[i] = 0.0;
        return S_SUCCESS;
#endif
    default: return S_UNSUPPORTED_META;
    }
}

/* param card: lines "NAME VALUE" with NAME in MZ, WZ, aEWM1 (1/alpha), SW2; '#' comments */
static int read_card(const char *path, Params *p) {
    FILE *fh = fopen(path, "r");
    if (!fh) return 0;
    char line[256], name[64];
    double v;
    while (fgets(line, sizeof line, fh)) {
        if (line[0] == '#' || sscanf(line, "%63s %lf", name, &v) != 2) continue;
        if (!strcmp(name, "MZ")) p->mz = v;
        else if (!strcmp(name, "WZ")) p->wz = v;
        else if (!strcmp(name, "aEWM1")) p->alpha = 1.0 / v;
        else if (!strcmp(name, "SW2")) p->sw2 = v;
    }
    fclose(fh);
    return 1;
}

Status umami_initialize(void **handle, const char *param_card_path) {
#ifdef FAIL_INIT
    return (Status)FAIL_INIT;
#endif
    Params *p = malloc(sizeof *p);
    if (!p) return S_ERROR;
    p->alpha = 1.0 / 128.9; p->sw2 = 0.2312; p->mz = 91.1876; p->wz = 2.4952;
    if (param_card_path && param_card_path[0] && !read_card(param_card_path, p)) {
        free(p);
        return S_ERROR;
    }
    *handle = p;
    return S_SUCCESS;
}

Status umami_set_parameter(void *handle, const char *name, double re, double im) {
    Params *p = handle;
    (void)im;
    if (!strcmp(name, "MZ")) p->mz = re;
    else if (!strcmp(name, "WZ")) p->wz = re;
    else if (!strcmp(name, "aEWM1")) p->alpha = 1.0 / re;
    else if (!strcmp(name, "SW2")) p->sw2 = re;
    else return S_ERROR;
    return S_SUCCESS;
}

Status umami_get_parameter(void *handle, const char *name, double *re, double *im) {
    Params *p = handle;
    if (!strcmp(name, "MZ")) *re = p->mz;
    else if (!strcmp(name, "WZ")) *re = p->wz;
    else if (!strcmp(name, "aEWM1")) *re = 1.0 / p->alpha;
    else if (!strcmp(name, "SW2")) *re = p->sw2;
    else return S_ERROR;
    if (im) *im = 0.0;
    return S_SUCCESS;
}

/* helicity amplitudes A_ij (i: incoming fermion L/R, j: outgoing lepton L/R), per diagram */
static void amplitudes(const Params *p, int flav, double s, double re[NDIAG][NHEL],
                       double im[NDIAG][NHEL]) {
    double e2 = 4.0 * M_PI * p->alpha, cz = 1.0 / (p->sw2 * (1.0 - p->sw2));
    double q1 = CHARGE[flav], q2 = -1.0;
    double g1[2] = {T3[flav] - q1 * p->sw2, -q1 * p->sw2};
    double g2[2] = {-0.5 + p->sw2, p->sw2};
    double d = s - p->mz * p->mz, den = d * d + p->mz * p->mz * p->wz * p->wz;
    /* helicity order: LL, RR, LR, RL */
    int hi[NHEL] = {0, 1, 0, 1}, hj[NHEL] = {0, 1, 1, 0};
    for (int h = 0; h < NHEL; ++h) {
        re[0][h] = e2 * q1 * q2 / s;
        im[0][h] = 0.0;
        double c = e2 * g1[hi[h]] * g2[hj[h]] * cz;
        re[1][h] = c * d / den;
        im[1][h] = -c * p->mz * p->wz / den;
    }
}

static double dot(const double *a, const double *b) {
    return a[0] * b[0] - a[1] * b[1] - a[2] * b[2] - a[3] * b[3];
}

Status umami_matrix_element(void *handle, size_t count, size_t stride, size_t offset,
                            size_t input_count, const int *input_keys, const void *const *inputs,
                            size_t output_count, const int *output_keys, void *const *outputs) {
    const Params *p = handle;
    const double *mom = NULL, *r_hel = NULL, *r_diag = NULL;
    const int *flavor = NULL;
    for (size_t k = 0; k < input_count; ++k) {
        switch (input_keys[k]) {
        case I_MOMENTA: mom = inputs[k]; break;
        case I_FLAVOR_INDEX: flavor = inputs[k]; break;
        case I_RANDOM_HELICITY: r_hel = inputs[k]; break;
        case I_RANDOM_DIAGRAM: r_diag = inputs[k]; break;
        case I_ALPHA_S: case I_RANDOM_COLOR: break;  /* no QCD, no colour choice */
        default: return S_UNSUPPORTED_INPUT;
        }
    }
    if (!mom) return S_MISSING_INPUT;
    double *me = NULL, *amp2 = NULL;
    int *hel_out = NULL, *col_out = NULL, *diag_out = NULL;
    for (size_t k = 0; k < output_count; ++k) {
        switch (output_keys[k]) {
        case O_MATRIX_ELEMENT: me = outputs[k]; break;
#ifndef NO_AMP2
        case O_DIAGRAM_AMP2: amp2 = outputs[k]; break;
#endif
        case O_HELICITY_INDEX: hel_out = outputs[k]; break;
        case O_COLOR_INDEX: col_out = outputs[k]; break;
        case O_DIAGRAM_INDEX: diag_out = outputs[k]; break;
        default: return S_UNSUPPORTED_OUTPUT;
        }
    }
#ifdef FAIL_STATUS
    return (Status)FAIL_STATUS;
#endif
    for (size_t e = offset; e < offset + count; ++e) {
        double pv[NPART][4];
        for (int i = 0; i < NPART; ++i)
            for (int c = 0; c < 4; ++c) pv[i][c] = mom[stride * (NPART * c + i) + e];
        int flav = flavor ? flavor[e] : 0;
        if (flav < 0 || flav > 2) return S_ERROR;
        /* massless legs: s = 2 p1.p2, t = -2 p1.p3, u = -2 p1.p4 (no cancellation) */
        double s = 2 * dot(pv[0], pv[1]), t = -2 * dot(pv[0], pv[2]),
               u = -2 * dot(pv[0], pv[3]);
        double re[NDIAG][NHEL], im[NDIAG][NHEL];
        amplitudes(p, flav, s, re, im);
        /* |M|^2 per helicity: (|A_LL|^2, |A_RR|^2) with u^2, (|A_LR|^2, |A_RL|^2) with t^2,
           spin average 1/4 times the 4 of the trace normalisation: factor 1 */
        double kin[NHEL] = {u * u, u * u, t * t, t * t};
        double per_hel[NHEL], total = 0.0, d2[NDIAG] = {0.0, 0.0};
        for (int h = 0; h < NHEL; ++h) {
            double ar = re[0][h] + re[1][h], ai = im[0][h] + im[1][h];
            per_hel[h] = (ar * ar + ai * ai) * kin[h] * COLOR_AVG[flav];
            total += per_hel[h];
            for (int g = 0; g < NDIAG; ++g)
                d2[g] += (re[g][h] * re[g][h] + im[g][h] * im[g][h]) * kin[h] * COLOR_AVG[flav];
        }
#ifdef RETURN_NAN
        if (e % 3 == 0) total = NAN;
#endif
        if (me) me[e] = total;
        if (amp2)
            for (int g = 0; g < NDIAG; ++g) amp2[stride * g + e] = d2[g];
        if (hel_out) {
            double x = (r_hel ? r_hel[e] : 0.5) * total, acc = 0.0;
            int h = 0;
            for (; h < NHEL - 1; ++h) {
                acc += per_hel[h];
                if (x < acc) break;
            }
            hel_out[e] = h;
        }
        if (col_out) col_out[e] = 0;
        if (diag_out) {
            double x = (r_diag ? r_diag[e] : 0.5) * (d2[0] + d2[1]);
            diag_out[e] = x < d2[0] ? 0 : 1;
        }
    }
    return S_SUCCESS;
}

#ifndef NO_FREE
Status umami_free(void *handle) {
    free(handle);
    return S_SUCCESS;
}
#endif
