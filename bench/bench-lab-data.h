/* bench-lab-data.h: lab-sized image sets made from the fixture faces, for the benchmarks */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define BENCH_N_SETS 3

/* Writes (unless already there) @dir/valid.h5 (11,547 images, float64), @dir/test.h5 and
 * @dir/bd_test.h5 (12,830 each, float32), channels-first 55x47x3 like the lab's, from the
 * faces in @fixtures/images with random shifts, brightness and noise; fills @paths (to be
 * freed). FALSE when the fixtures are missing. */
gboolean  bench_lab_data_ensure (const char *fixtures,
                                 const char *dir,
                                 char       *paths[BENCH_N_SETS]);

G_END_DECLS
