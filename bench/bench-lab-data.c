/* bench-lab-data.c: lab-sized image sets made from the fixture faces (see the header) */
#define G_LOG_DOMAIN "bench"

#include "bench-lab-data.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ps-h5.h"
#include "ps-image.h"

#define H 55
#define W 47

typedef struct {
  guint8 *pixels;
  int     label;
} Face;

static int
load_faces (const char *fixtures, const char *prefix, Face *faces)
{
  g_autofree char *dir = g_build_filename (fixtures, "images", NULL);
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;
  int n = 0;

  while (d && (name = g_dir_read_name (d)) != NULL)
    if (g_str_has_prefix (name, prefix))
      {
        g_autofree char *path = g_build_filename (dir, name, NULL);
        const char *eq = strchr (name, '=');
        faces[n].pixels = ps_image_load_rgb (path, H, W, NULL);
        faces[n].label = eq ? atoi (eq + 1) : 0;
        n += faces[n].pixels != NULL;
      }
  return n;
}

/* One synthetic image from a face, channels-first, as doubles. */
static void
jitter (GRand *r, const Face *f, double *out)
{
  int dy = g_rand_int_range (r, -3, 4), dx = g_rand_int_range (r, -3, 4);
  double gain = g_rand_double_range (r, 0.8, 1.2);

  for (int c = 0; c < 3; c++)
    for (int y = 0; y < H; y++)
      for (int x = 0; x < W; x++)
        {
          int sy = CLAMP (y + dy, 0, H - 1), sx = CLAMP (x + dx, 0, W - 1);
          double v = f->pixels[(sy * W + sx) * 3 + c] * gain + g_rand_int_range (r, -8, 9);
          out[(c * H + y) * W + x] = CLAMP ((int) v, 0, 255);
        }
}

static void
write_set (const char *path, int n, hid_t ftype, const Face *faces, int n_faces,
           int label_override, guint32 seed)
{
  g_autoptr (GRand) r = g_rand_new_with_seed (seed);
  hsize_t dims[4] = { n, 3, H, W }, one[4] = { 1, 3, H, W }, ln = n;
  g_autofree double *img = g_new (double, 3 * H * W);
  g_autofree double *labels = g_new (double, n);
  hid_t file = H5Fcreate (path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hid_t space = H5Screate_simple (4, dims, NULL), mspace = H5Screate_simple (4, one, NULL);
  hid_t dset = H5Dcreate2 (file, "data", ftype, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  hid_t lspace, lset;

  for (int i = 0; i < n; i++)
    {
      const Face *f = &faces[g_rand_int_range (r, 0, n_faces)];
      hsize_t off[4] = { i, 0, 0, 0 };

      jitter (r, f, img);
      labels[i] = label_override >= 0 ? label_override : f->label;
      H5Sselect_hyperslab (space, H5S_SELECT_SET, off, NULL, one, NULL);
      H5Dwrite (dset, H5T_NATIVE_DOUBLE, mspace, space, H5P_DEFAULT, img);
    }
  lspace = H5Screate_simple (1, &ln, NULL);
  lset = H5Dcreate2 (file, "label", H5T_IEEE_F64LE, lspace, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite (lset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, labels);
  H5Dclose (lset);
  H5Sclose (lspace);
  H5Dclose (dset);
  H5Sclose (mspace);
  H5Sclose (space);
  H5Fclose (file);
}

gboolean
bench_lab_data_ensure (const char *fixtures, const char *dir, char *paths[BENCH_N_SETS])
{
  Face clean[16], sun[16];
  int n_clean, n_sun;

  paths[0] = g_build_filename (dir, "valid.h5", NULL);
  paths[1] = g_build_filename (dir, "test.h5", NULL);
  paths[2] = g_build_filename (dir, "bd_test.h5", NULL);
  if (g_file_test (paths[2], G_FILE_TEST_EXISTS))
    return TRUE;
  ps_h5_init ();
  n_clean = load_faces (fixtures, "cl_", clean);
  n_sun = load_faces (fixtures, "sun_", sun);
  if (n_clean == 0 || n_sun == 0)
    return FALSE;
  printf ("writing lab-sized data to %s …\n", dir);
  write_set (paths[0], 11547, H5T_IEEE_F64LE, clean, n_clean, -1, 1);
  write_set (paths[1], 12830, H5T_IEEE_F32LE, clean, n_clean, -1, 2);
  write_set (paths[2], 12830, H5T_IEEE_F32LE, sun, n_sun, 0, 3);
  for (int i = 0; i < n_clean; i++)
    g_free (clean[i].pixels);
  for (int i = 0; i < n_sun; i++)
    g_free (sun[i].pixels);
  return TRUE;
}
