/*
 * classifier — labels a long mono 16-bit PCM recording, window by window.
 *
 * A WebAssembly (wasm32-wasi) workload for ucp-dtn; it builds natively too. No libraries beyond
 * the C library and libm: its own radix-2 FFT, its own feature extraction, a fixed decision list.
 *
 * Input (stdin, or the file named as the last argument): either raw little-endian signed 16-bit
 * mono PCM (sample rate from --rate, default 16000) or a RIFF/WAVE file holding 16-bit mono PCM
 * (recognised by its "RIFF....WAVE" header; its rate is used). The input is read in a stream:
 * memory use does not grow with its length.
 *
 * Analysis: windows of --window-ms (default 1000) every --hop-ms (default 500). Each window is cut
 * into Hann-weighted frames of FFT_MS (about 32 ms, a power of two in samples: 512 at 16 kHz), one
 * every 10 ms; every frame goes through the FFT. Per window: RMS level, zero-crossing rate, and from the mean
 * power spectrum the spectral centroid, bandwidth, 85% roll-off, flatness and the energy shares of
 * three bands; from the frames, the tonality (share of a frame's energy within 3 bins of its
 * strongest bin) and the modulation (coefficient of variation of the frames' energies).
 *
 * Labels (first rule that matches):
 *   silence  level below -50 dBFS
 *   speech   modulation >= 0.55 (bursts of syllables) and centroid 100..3000 Hz
 *   engine   >= 70% of the energy below 300 Hz (a low hum)
 *   alarm    tonality >= 0.6 and centroid >= 600 Hz (a steady, swept or two-tone high tone)
 *   noise    flatness >= 0.25 (broadband: water, wind, rain, hiss)
 *   unknown  anything else
 *
 * Output (stdout): one line per complete window, "<t_start seconds> <label>" (with --features,
 * the features follow as name=value); then summary lines starting with '#':
 *   # windows <n> rate <hz> samples <n> window_s <s> hop_s <s>
 *   # <label> <count>            (every label, in the order above)
 *
 * Exit status: 0 success; 2 usage error; 3 bad input (odd byte count, empty input, input shorter
 * than one window, unsupported WAV); 4 read or write error; 5 out of memory. Messages go to stderr.
 * The summary is printed only on success; window lines printed before an error found late (an odd
 * byte at the end of a long stream) stay printed.
 */

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    EXIT_USAGE = 2,
    EXIT_INPUT = 3,
    EXIT_IO = 4,
    EXIT_MEMORY = 5,
};

#define FFT_MS 32          /* frame length: the power of two nearest 32 ms */
#define FRAME_HOP_MS 10    /* one frame every 10 ms */
#define READ_CHUNK 65536   /* bytes read from the input at a time */
#define MIN_RATE 4000
#define MAX_RATE 192000
#define PI 3.14159265358979323846

/* Thresholds of the decision list (see the header comment). */
#define SILENCE_DBFS (-50.0)
#define SPEECH_MODULATION 0.55
#define SPEECH_CENTROID_MIN 100.0
#define SPEECH_CENTROID_MAX 3000.0
#define ENGINE_LOW_SHARE 0.70
#define LOW_BAND_HZ 300.0
#define HIGH_BAND_HZ 2000.0
#define ALARM_TONALITY 0.60
#define ALARM_CENTROID_MIN 600.0
#define NOISE_FLATNESS 0.25
#define TONAL_BINS 3       /* bins either side of the peak counted as "the tone" */
#define ROLLOFF_SHARE 0.85

enum label { SILENCE, SPEECH, ENGINE, ALARM, NOISE, UNKNOWN, LABEL_COUNT };

static const char *const LABEL_NAMES[LABEL_COUNT] = {
    "silence", "speech", "engine", "alarm", "noise", "unknown",
};

struct features {
    double rms_dbfs;    /* 10 log10(mean square), full scale = 1.0 */
    double zcr;         /* zero crossings per sample */
    double centroid;    /* Hz */
    double bandwidth;   /* Hz: spread around the centroid */
    double rolloff;     /* Hz below which ROLLOFF_SHARE of the energy lies */
    double flatness;    /* geometric / arithmetic mean of the mean power spectrum */
    double low, mid, high; /* energy shares below LOW_BAND_HZ, up to HIGH_BAND_HZ, above */
    double tonality;    /* mean share of a frame's energy near its strongest bin */
    double modulation;  /* coefficient of variation of the frames' energies */
};

struct options {
    long rate;          /* raw PCM sample rate (a WAV header overrides it) */
    int rate_given;
    long window_ms;
    long hop_ms;
    int features;
    const char *path;   /* NULL or "-": stdin */
};

/* ---------------------------------------------------------------- input */

struct reader {
    FILE *file;
    const char *name;
    unsigned char buf[READ_CHUNK];
    size_t len, pos;
    int eof;
    uint64_t limit;     /* bytes of sample data left (WAV data chunk); UINT64_MAX: to EOF */
    uint64_t consumed;  /* sample data bytes consumed */
};

static void fail(int status, const char *fmt, const char *arg) {
    fputs("classifier: ", stderr);
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    exit(status);
}

/* Top the buffer up so at least `want` bytes are buffered (fewer only at end of file). */
static void reader_fill(struct reader *r, size_t want) {
    if (r->pos > 0 && r->len - r->pos < want) {
        memmove(r->buf, r->buf + r->pos, r->len - r->pos);
        r->len -= r->pos;
        r->pos = 0;
    }
    while (!r->eof && r->len - r->pos < want && r->len < sizeof r->buf) {
        size_t got = fread(r->buf + r->len, 1, sizeof r->buf - r->len, r->file);
        r->len += got;
        if (got == 0) {
            if (ferror(r->file))
                fail(EXIT_IO, "cannot read %s", r->name);
            r->eof = 1;
        }
    }
}

static uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t le16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }

/* Skip `n` header bytes; false if the input ends first. */
static int reader_skip(struct reader *r, uint64_t n) {
    while (n > 0) {
        reader_fill(r, 1);
        size_t have = r->len - r->pos;
        if (have == 0)
            return 0;
        size_t step = n < have ? (size_t)n : have;
        r->pos += step;
        n -= step;
    }
    return 1;
}

/* If the input is a WAV file, check its format, set *rate and stop at the samples. */
static void read_header(struct reader *r, long *rate, int *is_wav) {
    *is_wav = 0;
    reader_fill(r, 12);
    if (r->len - r->pos < 12 || memcmp(r->buf + r->pos, "RIFF", 4) != 0 ||
        memcmp(r->buf + r->pos + 8, "WAVE", 4) != 0)
        return; /* raw PCM */
    *is_wav = 1;
    r->pos += 12;
    int have_format = 0;
    for (;;) {
        reader_fill(r, 8);
        if (r->len - r->pos < 8)
            fail(EXIT_INPUT, "%s: WAV file without a data chunk", r->name);
        const unsigned char *chunk = r->buf + r->pos;
        uint32_t size = le32(chunk + 4);
        if (memcmp(chunk, "fmt ", 4) == 0) {
            if (size < 16)
                fail(EXIT_INPUT, "%s: WAV fmt chunk too short", r->name);
            r->pos += 8;
            reader_fill(r, 16);
            if (r->len - r->pos < 16)
                fail(EXIT_INPUT, "%s: WAV file ends in its fmt chunk", r->name);
            const unsigned char *fmt = r->buf + r->pos;
            uint16_t tag = le16(fmt), channels = le16(fmt + 2), bits = le16(fmt + 14);
            uint32_t hz = le32(fmt + 4);
            /* 1: PCM; 0xFFFE: WAVE_FORMAT_EXTENSIBLE (accepted for 16-bit mono) */
            if ((tag != 1 && tag != 0xFFFE) || channels != 1 || bits != 16)
                fail(EXIT_INPUT, "%s: only 16-bit mono PCM WAV files are supported", r->name);
            if (hz < MIN_RATE || hz > MAX_RATE)
                fail(EXIT_INPUT, "%s: WAV sample rate outside 4000..192000 Hz", r->name);
            *rate = (long)hz;
            have_format = 1;
            if (!reader_skip(r, (uint64_t)size + (size & 1)))
                fail(EXIT_INPUT, "%s: WAV file ends in its fmt chunk", r->name);
        } else if (memcmp(chunk, "data", 4) == 0) {
            if (!have_format)
                fail(EXIT_INPUT, "%s: WAV data chunk before the fmt chunk", r->name);
            r->pos += 8;
            /* 0 and 0xFFFFFFFF are what streaming writers put when the length is unknown. */
            r->limit = (size == 0 || size == 0xFFFFFFFFu) ? UINT64_MAX : size;
            return;
        } else if (!reader_skip(r, 8 + (uint64_t)size + (size & 1))) {
            fail(EXIT_INPUT, "%s: WAV file without a data chunk", r->name);
        }
    }
}

/* Read up to `max` samples as floats in [-1, 1); 0 at the end of the data. */
static size_t read_samples(struct reader *r, float *out, size_t max) {
    size_t n = 0;
    while (n < max && r->limit > 0) {
        reader_fill(r, 2);
        size_t have = r->len - r->pos;
        if (have > r->limit)
            have = (size_t)r->limit;
        if (have < 2) {
            if (have == 1) {
                char count[32];
                snprintf(count, sizeof count, "%llu",
                         (unsigned long long)(r->consumed + have));
                fail(EXIT_INPUT,
                     "input ends in the middle of a sample: %s bytes of 16-bit PCM (odd)", count);
            }
            r->limit = 0; /* end of the data (a WAV file may stop short of its declared size) */
            break;
        }
        size_t take = have / 2;
        if (take > max - n)
            take = max - n;
        const unsigned char *p = r->buf + r->pos;
        for (size_t i = 0; i < take; i++)
            out[n + i] = (float)(int16_t)(uint16_t)(p[2 * i] | p[2 * i + 1] << 8) / 32768.0f;
        n += take;
        r->pos += 2 * take;
        r->consumed += 2 * take;
        if (r->limit != UINT64_MAX)
            r->limit -= 2 * take;
    }
    return n;
}

/* ---------------------------------------------------------------- FFT */

struct fft {
    size_t n;
    unsigned bits;
    double *cos_table, *sin_table; /* n/2 twiddles */
    size_t *reversed;              /* bit-reversed index of every index */
    double *re, *im;               /* work arrays */
    double *hann;
};

static void *xmalloc(size_t count, size_t size) {
    void *p = calloc(count, size);
    if (p == NULL)
        fail(EXIT_MEMORY, "%s", "out of memory");
    return p;
}

static void fft_init(struct fft *f, size_t n) {
    f->n = n;
    f->bits = 0;
    while (((size_t)1 << f->bits) < n)
        f->bits++;
    f->cos_table = xmalloc(n / 2, sizeof(double));
    f->sin_table = xmalloc(n / 2, sizeof(double));
    f->reversed = xmalloc(n, sizeof(size_t));
    f->re = xmalloc(n, sizeof(double));
    f->im = xmalloc(n, sizeof(double));
    f->hann = xmalloc(n, sizeof(double));
    for (size_t k = 0; k < n / 2; k++) {
        f->cos_table[k] = cos(2.0 * PI * (double)k / (double)n);
        f->sin_table[k] = -sin(2.0 * PI * (double)k / (double)n);
    }
    for (size_t i = 0; i < n; i++) {
        size_t r = 0;
        for (unsigned b = 0; b < f->bits; b++)
            r |= ((i >> b) & 1) << (f->bits - 1 - b);
        f->reversed[i] = r;
        f->hann[i] = 0.5 - 0.5 * cos(2.0 * PI * (double)i / (double)n);
    }
}

/* In-place iterative radix-2 decimation-in-time FFT of f->re, f->im. */
static void fft_run(struct fft *f) {
    size_t n = f->n;
    double *re = f->re, *im = f->im;
    for (size_t i = 0; i < n; i++) {
        size_t j = f->reversed[i];
        if (j > i) {
            double t = re[i];
            re[i] = re[j];
            re[j] = t;
            t = im[i];
            im[i] = im[j];
            im[j] = t;
        }
    }
    for (size_t half = 1; half < n; half *= 2) {
        size_t stride = n / (2 * half);
        for (size_t start = 0; start < n; start += 2 * half) {
            for (size_t k = 0; k < half; k++) {
                double wr = f->cos_table[k * stride], wi = f->sin_table[k * stride];
                size_t a = start + k, b = a + half;
                double tr = re[b] * wr - im[b] * wi;
                double ti = re[b] * wi + im[b] * wr;
                re[b] = re[a] - tr;
                im[b] = im[a] - ti;
                re[a] += tr;
                im[a] += ti;
            }
        }
    }
}

/* ---------------------------------------------------------------- analysis */

struct analyser {
    long rate;
    size_t window, hop, frame, frame_hop;
    struct fft fft;
    double *mean_power;   /* frame/2 + 1 bins */
    double *frame_energy; /* per frame of a window */
    size_t frames;        /* frames per window */
};

static void analyser_init(struct analyser *a, long rate, size_t window, size_t hop) {
    a->rate = rate;
    a->window = window;
    a->hop = hop;
    /* The power of two nearest FFT_MS milliseconds (512 samples at 16 kHz). */
    size_t target = (size_t)(rate * FFT_MS / 1000);
    a->frame = 64;
    while (a->frame * 3 / 2 < target)
        a->frame *= 2;
    fft_init(&a->fft, a->frame);
    a->frame_hop = (size_t)(rate * FRAME_HOP_MS / 1000);
    a->mean_power = xmalloc(a->frame / 2 + 1, sizeof(double));
    a->frames = window >= a->frame ? (window - a->frame) / a->frame_hop + 1 : 0;
    a->frame_energy = xmalloc(a->frames > 0 ? a->frames : 1, sizeof(double));
}

static void analyse(struct analyser *a, const float *x, struct features *out) {
    size_t w = a->window, n = a->frame, bins = n / 2 + 1;
    double bin_hz = (double)a->rate / (double)n;

    double square_sum = 0.0;
    size_t crossings = 0;
    for (size_t i = 0; i < w; i++) {
        square_sum += (double)x[i] * (double)x[i];
        if (i > 0 && (x[i - 1] < 0.0f) != (x[i] < 0.0f))
            crossings++;
    }
    double mean_square = square_sum / (double)w;
    out->rms_dbfs = 10.0 * log10(mean_square + 1e-12);
    out->zcr = (double)crossings / (double)(w - 1);

    memset(a->mean_power, 0, bins * sizeof(double));
    double tonal_sum = 0.0;
    for (size_t fr = 0; fr < a->frames; fr++) {
        const float *s = x + fr * a->frame_hop;
        for (size_t i = 0; i < n; i++) {
            a->fft.re[i] = (double)s[i] * a->fft.hann[i];
            a->fft.im[i] = 0.0;
        }
        fft_run(&a->fft);
        double energy = 0.0, peak = -1.0;
        size_t peak_bin = 1;
        for (size_t k = 1; k < bins; k++) { /* bin 0 (DC) is left out everywhere */
            double p = a->fft.re[k] * a->fft.re[k] + a->fft.im[k] * a->fft.im[k];
            a->fft.re[k] = p; /* keep the power for the tonality sum below */
            a->mean_power[k] += p;
            energy += p;
            if (p > peak) {
                peak = p;
                peak_bin = k;
            }
        }
        size_t lo = peak_bin > TONAL_BINS ? peak_bin - TONAL_BINS : 1;
        size_t hi = peak_bin + TONAL_BINS < bins - 1 ? peak_bin + TONAL_BINS : bins - 1;
        double near = 0.0;
        for (size_t k = lo; k <= hi; k++)
            near += a->fft.re[k];
        tonal_sum += energy > 0.0 ? near / energy : 0.0;
        a->frame_energy[fr] = energy;
    }

    double total = 0.0, weighted = 0.0, log_sum = 0.0, low = 0.0, high = 0.0;
    for (size_t k = 1; k < bins; k++) {
        double p = a->mean_power[k] / (double)a->frames, hz = (double)k * bin_hz;
        a->mean_power[k] = p;
        total += p;
        weighted += hz * p;
        log_sum += log(p + 1e-20);
        if (hz < LOW_BAND_HZ)
            low += p;
        else if (hz >= HIGH_BAND_HZ)
            high += p;
    }
    if (total > 0.0) {
        double centroid = weighted / total, spread = 0.0, running = 0.0;
        double rolloff = (double)(bins - 1) * bin_hz;
        int rolled = 0;
        for (size_t k = 1; k < bins; k++) {
            double hz = (double)k * bin_hz, p = a->mean_power[k];
            spread += (hz - centroid) * (hz - centroid) * p;
            running += p;
            if (!rolled && running >= ROLLOFF_SHARE * total) {
                rolloff = hz;
                rolled = 1;
            }
        }
        out->centroid = centroid;
        out->bandwidth = sqrt(spread / total);
        out->rolloff = rolloff;
        out->flatness = exp(log_sum / (double)(bins - 1)) / (total / (double)(bins - 1));
        out->low = low / total;
        out->high = high / total;
        out->mid = 1.0 - out->low - out->high;
    } else {
        out->centroid = out->bandwidth = out->rolloff = out->flatness = 0.0;
        out->low = out->mid = out->high = 0.0;
    }
    out->tonality = tonal_sum / (double)a->frames;

    double mean = 0.0, var = 0.0;
    for (size_t fr = 0; fr < a->frames; fr++)
        mean += a->frame_energy[fr];
    mean /= (double)a->frames;
    for (size_t fr = 0; fr < a->frames; fr++)
        var += (a->frame_energy[fr] - mean) * (a->frame_energy[fr] - mean);
    var /= (double)a->frames;
    out->modulation = mean > 0.0 ? sqrt(var) / mean : 0.0;
}

static enum label classify(const struct features *f) {
    if (f->rms_dbfs < SILENCE_DBFS)
        return SILENCE;
    if (f->modulation >= SPEECH_MODULATION && f->centroid >= SPEECH_CENTROID_MIN &&
        f->centroid <= SPEECH_CENTROID_MAX)
        return SPEECH;
    if (f->low >= ENGINE_LOW_SHARE)
        return ENGINE;
    if (f->tonality >= ALARM_TONALITY && f->centroid >= ALARM_CENTROID_MIN)
        return ALARM;
    if (f->flatness >= NOISE_FLATNESS)
        return NOISE;
    return UNKNOWN;
}

/* ---------------------------------------------------------------- command line */

static void usage(void) {
    fputs("usage: classifier [--rate HZ] [--window-ms MS] [--hop-ms MS] [--features] [FILE]\n"
          "Labels each window of a 16-bit mono PCM stream (raw little-endian, or WAV) read from\n"
          "FILE or stdin: silence, speech, engine, alarm, noise or unknown.\n",
          stderr);
}

static long parse_number(const char *option, const char *text, long lo, long hi) {
    char *end;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < lo || value > hi) {
        fprintf(stderr, "classifier: %s needs a whole number in %ld..%ld, not '%s'\n", option,
                lo, hi, text);
        exit(EXIT_USAGE);
    }
    return value;
}

static void parse_options(int argc, char **argv, struct options *o) {
    o->rate = 16000;
    o->rate_given = 0;
    o->window_ms = 1000;
    o->hop_ms = 500;
    o->features = 0;
    o->path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *value = NULL;
        const char *names[] = {"--rate", "--window-ms", "--hop-ms"};
        int which = -1;
        for (int k = 0; k < 3; k++) {
            size_t len = strlen(names[k]);
            if (strncmp(arg, names[k], len) == 0 && (arg[len] == '=' || arg[len] == '\0')) {
                which = k;
                if (arg[len] == '=') {
                    value = arg + len + 1;
                } else if (i + 1 < argc) {
                    value = argv[++i];
                } else {
                    fprintf(stderr, "classifier: %s needs a value\n", names[k]);
                    exit(EXIT_USAGE);
                }
            }
        }
        if (which == 0) {
            o->rate = parse_number("--rate", value, MIN_RATE, MAX_RATE);
            o->rate_given = 1;
        } else if (which == 1) {
            o->window_ms = parse_number("--window-ms", value, 100, 60000);
        } else if (which == 2) {
            o->hop_ms = parse_number("--hop-ms", value, 10, 60000);
        } else if (strcmp(arg, "--features") == 0) {
            o->features = 1;
        } else if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage();
            exit(0);
        } else if (arg[0] == '-' && arg[1] != '\0') {
            fprintf(stderr, "classifier: unknown option '%s'\n", arg);
            usage();
            exit(EXIT_USAGE);
        } else if (o->path != NULL) {
            fputs("classifier: give at most one input file\n", stderr);
            exit(EXIT_USAGE);
        } else {
            o->path = arg;
        }
    }
    if (o->hop_ms > o->window_ms) {
        fputs("classifier: --hop-ms must not exceed --window-ms\n", stderr);
        exit(EXIT_USAGE);
    }
}

int main(int argc, char **argv) {
    struct options opt;
    parse_options(argc, argv, &opt);

    static char out_buffer[1 << 16];
    setvbuf(stdout, out_buffer, _IOFBF, sizeof out_buffer);

    static struct reader reader;
    if (opt.path == NULL || strcmp(opt.path, "-") == 0) {
        reader.file = stdin;
        reader.name = "stdin";
    } else {
        reader.file = fopen(opt.path, "rb");
        reader.name = opt.path;
        if (reader.file == NULL) {
            fprintf(stderr, "classifier: cannot open %s: %s\n", opt.path, strerror(errno));
            return EXIT_IO;
        }
    }
    reader.limit = UINT64_MAX;
    long rate = opt.rate;
    int is_wav;
    read_header(&reader, &rate, &is_wav);
    if (is_wav && opt.rate_given && rate != opt.rate)
        fputs("classifier: --rate ignored: the WAV header gives the rate\n", stderr);

    /* 64-bit products: long is 32 bits on wasm32, and 192000 * 60000 does not fit. */
    size_t window = (size_t)((long long)rate * opt.window_ms / 1000);
    size_t hop = (size_t)((long long)rate * opt.hop_ms / 1000);
    if (hop == 0)
        hop = 1;
    struct analyser analyser;
    analyser_init(&analyser, rate, window, hop);
    if (analyser.frames == 0)
        fail(EXIT_USAGE, "%s", "--window-ms is shorter than one FFT frame");

    float *samples = xmalloc(window, sizeof(float));
    size_t filled = 0, windows = 0;
    uint64_t total = 0;
    long counts[LABEL_COUNT] = {0};
    for (;;) {
        size_t got = read_samples(&reader, samples + filled, window - filled);
        filled += got;
        total += got;
        if (filled < window)
            break;
        struct features f;
        analyse(&analyser, samples, &f);
        enum label label = classify(&f);
        counts[label]++;
        double t = (double)windows * (double)hop / (double)rate;
        if (opt.features)
            printf("%.3f %s rms_dbfs=%.1f zcr=%.4f centroid=%.0f bandwidth=%.0f rolloff=%.0f "
                   "flatness=%.4f low=%.3f mid=%.3f high=%.3f tonality=%.3f modulation=%.3f\n",
                   t, LABEL_NAMES[label], f.rms_dbfs, f.zcr, f.centroid, f.bandwidth, f.rolloff,
                   f.flatness, f.low, f.mid, f.high, f.tonality, f.modulation);
        else
            printf("%.3f %s\n", t, LABEL_NAMES[label]);
        windows++;
        memmove(samples, samples + hop, (window - hop) * sizeof(float));
        filled = window - hop;
    }
    if (total == 0)
        fail(EXIT_INPUT, "no audio samples in %s (empty input)", reader.name);
    if (windows == 0) {
        char detail[96];
        snprintf(detail, sizeof detail, "%llu samples, one window is %zu",
                 (unsigned long long)total, window);
        fail(EXIT_INPUT, "input shorter than one window (%s)", detail);
    }
    printf("# windows %zu rate %ld samples %llu window_s %.3f hop_s %.3f\n", windows, rate,
           (unsigned long long)total, (double)window / (double)rate, (double)hop / (double)rate);
    for (int k = 0; k < LABEL_COUNT; k++)
        printf("# %s %ld\n", LABEL_NAMES[k], counts[k]);
    if (fflush(stdout) != 0)
        return EXIT_IO;
    return 0;
}
