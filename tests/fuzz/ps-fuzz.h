/* ps-fuzz.h: what the fuzz targets share (temp files, handle checks, a small workout) */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "ps-model.h"
#include "ps-dataset.h"
#include "ps-repaired.h"

G_BEGIN_DECLS

/* Models larger than these are loaded but not run: the fuzzer looks for reader defects,
 * and a legitimately big network would only slow it down. */
#define PS_FUZZ_RUN_MAX_PARAMS      (4u << 20)
#define PS_FUZZ_RUN_MAX_ACTIVATIONS (4u << 20)

/* The libFuzzer entry point every target defines (replay.c calls it too). */
int          LLVMFuzzerTestOneInput (const uint8_t *data,
                                     size_t         size);

/* Once per process: quiet HDF5, one thread, GLib criticals fatal (unless
 * PS_FUZZ_CRITICALS=warn), a private temporary folder. */
void         ps_fuzz_init           (void);
/* Writes @data into the process's folder as @name (readers take paths); returns the path,
 * owned by the harness and valid until the next call with the same @name. */
const char  *ps_fuzz_write          (const uint8_t *data,
                                     size_t         size,
                                     const char    *name);
/* Checks that a reader that failed said why; prints it when PS_FUZZ_VERBOSE is set. */
void         ps_fuzz_check_error    (const GError  *error);
/* Aborts when an HDF5 identifier is still open after an input: a leak makes the fuzzer run
 * out of memory slowly, and a reader that leaks on one file will on thousands. */
void         ps_fuzz_check_handles  (void);
/* Copies a loaded model and classifies one blank image with it when it is small enough
 * to do so quickly: shapes a reader accepted must also be safe to run. */
void         ps_fuzz_exercise_model (const PsModel *model);
/* The same for G: B and B' run, and G classifies one blank image into 0..n_classes. */
void         ps_fuzz_exercise_repaired (const PsRepaired *g);
/* Reads the first image of a loaded set, as inference would. */
void         ps_fuzz_exercise_dataset (const PsDataset *ds);

G_END_DECLS
