/* gen-seeds.c: the fuzzers' seed corpus, made at build time from the project's own files:
 * the demo BadNet, models, G files and sets made by the engine, images made by GdkPixbuf.
 * Usage: gen-seeds OUTDIR DEMO_MODEL STAMP. Every seed is checked to load, so that the
 * fuzzers start from files the readers accept. */
#define G_LOG_DOMAIN "fuzz-seeds"

#include "ps-dataset.h"
#include "ps-h5.h"
#include "ps-idx.h"
#include "ps-image.h"
#include "ps-model.h"
#include "ps-repaired.h"
#include "ps-sweep.h"
#include "../ps-test-util.h"

#include <gdk-pixbuf/gdk-pixbuf.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stdlib.h>

static const char *outdir;

static char *
seed_path (const char *target, const char *name)
{
  g_autofree char *dir = g_build_filename (outdir, target, NULL);

  if (g_mkdir_with_parents (dir, 0755) != 0)
    g_error ("cannot create %s", dir);
  return g_build_filename (dir, name, NULL);
}

static void
check (gboolean ok, GError *error)
{
  if (!ok)
    g_error ("%s", error ? error->message : "failed");
}

static void
save_bytes (const char *target, const char *name, const void *data, gsize len)
{
  g_autofree char *path = seed_path (target, name);
  g_autoptr (GError) error = NULL;

  check (g_file_set_contents (path, data, len, &error), error);
}

static void
save_model (const PsModel *m, const char *target, const char *name)
{
  g_autofree char *path = seed_path (target, name);
  g_autoptr (GError) error = NULL;
  g_autoptr (PsModel) back = NULL;

  check (ps_model_save (m, path, &error), error);
  back = ps_model_load (path, &error);
  check (back != NULL, error);
}

/* A Keras weights-only file (what model.save_weights writes): the children and the
 * layer_names of the full model's model_weights group, at the root. */
static herr_t
copy_link (hid_t group, const char *name, const H5L_info_t *info, void *dst)
{
  return H5Ocopy (group, name, *(hid_t *) dst, name, H5P_DEFAULT, H5P_DEFAULT);
}

static void
save_weights_only (const char *demo)
{
  g_autofree char *path = seed_path ("model-weights", "demo-weights.h5");
  g_autoptr (GError) error = NULL;
  g_autoptr (PsModel) back = NULL;
  g_auto (GStrv) names = NULL;
  hid_t src, wg, dst;
  gboolean ok;

  ps_h5_lock ();
  src = ps_h5_open (demo, FALSE, &error);
  check (src >= 0, error);
  wg = H5Gopen2 (src, "model_weights", H5P_DEFAULT);
  dst = H5Fcreate (path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  names = ps_h5_read_attr_strings (wg, "layer_names", &error);
  ok = wg >= 0 && dst >= 0 && names != NULL
       && H5Literate (wg, H5_INDEX_NAME, H5_ITER_INC, NULL, copy_link, &dst) >= 0
       && ps_h5_write_attr_strings (dst, "layer_names", (const char * const *) names, &error)
       && ps_h5_write_attr_string (dst, "backend", "tensorflow", &error);
  H5Gclose (wg);
  H5Fclose (src);
  H5Fclose (dst);
  ps_h5_unlock ();
  check (ok, error);
  back = ps_model_load (path, &error);
  check (back != NULL && back->weights_only, error);
}

/* The layer names of the built-in topology and one bias: read up to the first weights. */
static void
save_weights_stub (void)
{
  static const char *names[] = { "input", "conv_1", "pool_1", "conv_2", "pool_2", "conv_3",
                                 "pool_3", "conv_4", "fc_1", "fc_2", "add_1", "output", NULL };
  g_autofree char *path = seed_path ("model-weights", "stub-weights.h5");
  g_autoptr (GError) error = NULL;
  const float bias[3] = { 0.1f, -0.2f, 0.3f };
  const hsize_t dims[1] = { 3 };
  hid_t f;
  gboolean ok;

  ps_h5_lock ();
  f = H5Fcreate (path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  ok = f >= 0 && ps_h5_write_attr_strings (f, "layer_names", names, &error)
       && ps_h5_write_floats (f, "output/output/bias:0", 1, dims, bias, &error);
  H5Fclose (f);
  ps_h5_unlock ();
  check (ok, error);
}

static void
save_models (const char *demo)
{
  g_autoptr (PsModel) small = ps_test_small_model (7, 3);
  g_autoptr (PsModel) demo_model = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *deepid = ps_deepid_config (3);
  g_autofree char *demo_copy = seed_path ("model-keras", "demo.h5");
  g_autofree char *bytes = NULL;
  gsize len;

  save_model (small, "model-keras", "small.h5");
  small->input_scale = 1.0 / 255;
  small->scale_recorded = TRUE;
  save_model (small, "model-keras", "small-scaled.h5");

  check (g_file_get_contents (demo, &bytes, &len, &error), error);
  save_bytes ("model-keras", "demo.h5", bytes, len);
  demo_model = ps_model_load (demo_copy, &error);
  check (demo_model != NULL, error);

  save_bytes ("model-config", "small.json", small->config_json, strlen (small->config_json));
  save_bytes ("model-config", "demo.json", demo_model->config_json,
              strlen (demo_model->config_json));
  save_bytes ("model-config", "deepid.json", deepid, strlen (deepid));

  save_weights_only (demo);
  save_weights_stub ();
}

/* G files of the small model: pruning only, and chosen by a drop in accuracy. */
static void
save_g (void)
{
  g_autoptr (PsModel) m = ps_test_small_model (11, 3);
  g_autoptr (PsDataset) valid = ps_test_random_data (m, 24, 5);
  const PsDataset *sets[PS_N_SETS] = { valid, NULL, NULL };
  g_autoptr (GError) error = NULL;
  PsSweep *sweep = ps_sweep_run (m, sets, NULL, NULL, NULL, NULL, &error);
  const struct { int pruned; double drop; const char *name; } gs[] = {
    { 2, NAN, "g-pruned-2.h5" }, { 5, 4.0, "g-drop-4.h5" },
  };

  check (sweep != NULL, error);
  for (guint i = 0; i < G_N_ELEMENTS (gs); i++)
    {
      g_autoptr (PsRepaired) g = ps_repaired_build (m, sweep, gs[i].pruned, gs[i].drop, &error);
      g_autofree char *path = seed_path ("g", gs[i].name);
      g_autoptr (PsRepaired) back = NULL;

      check (g != NULL && ps_repaired_save (g, path, &error), error);
      back = ps_repaired_load (path, &error);
      check (back != NULL, error);
    }
  ps_sweep_free (sweep);
}

static void
save_set (PsDataset *ds, const char *name)
{
  g_autofree char *path = seed_path ("dataset", name);
  g_autoptr (GError) error = NULL;
  g_autoptr (PsDataset) back = NULL;

  check (ps_dataset_save (ds, path, &error), error);
  back = ps_dataset_load (path, &error);
  check (back != NULL && back->n == ds->n, error);
}

static void
save_sets (void)
{
  g_autoptr (PsModel) m = ps_test_small_model (3, 3);
  g_autoptr (PsDataset) rgb = ps_test_random_data (m, 4, 9);
  g_autoptr (PsDataset) gray = NULL;
  g_autoptr (PsDataset) f = g_new0 (PsDataset, 1);
  guint8 px[2 * 4 * 3];
  int labels[3] = { 0, 1, 2 };

  save_set (rgb, "rgb-u8.h5");
  for (guint i = 0; i < sizeof px; i++)
    px[i] = (guint8) (i * 37);
  gray = ps_dataset_new_u8 (3, 2, 4, 1, px, labels);
  save_set (gray, "gray-u8.h5");
  /* Pixels that are not whole numbers make a float set. */
  f->n = 2, f->h = 3, f->w = 2, f->c = 3;
  f->f32 = g_new (float, 2 * 3 * 2 * 3);
  for (int i = 0; i < 2 * 3 * 2 * 3; i++)
    f->f32[i] = i * 0.37f;
  f->labels = g_memdup2 (labels, sizeof labels);
  save_set (f, "rgb-float.h5");
}

static void
save_images (void)
{
  const struct { const char *type, *name; int w, h; gboolean alpha; } imgs[] = {
    { "png", "rgb.png", 6, 5, FALSE }, { "png", "rgba.png", 4, 3, TRUE },
    { "jpeg", "face-size.jpg", 47, 55, FALSE }, { "jpeg", "tiny.jpg", 8, 8, FALSE },
  };

  for (guint i = 0; i < G_N_ELEMENTS (imgs); i++)
    {
      g_autoptr (GdkPixbuf) pb = gdk_pixbuf_new (GDK_COLORSPACE_RGB, imgs[i].alpha, 8,
                                                 imgs[i].w, imgs[i].h);
      g_autoptr (GError) error = NULL;
      g_autofree char *buf = NULL;
      g_autofree guint8 *rgb = NULL;
      g_autofree char *path = seed_path ("image", imgs[i].name);
      gsize len;

      gdk_pixbuf_fill (pb, 0x4080c0ff);
      for (int y = 0; y < imgs[i].h; y++)
        gdk_pixbuf_get_pixels (pb)[y * gdk_pixbuf_get_rowstride (pb)] = (guint8) (y * 40);
      if (g_str_equal (imgs[i].type, "jpeg"))
        check (gdk_pixbuf_save_to_buffer (pb, &buf, &len, "jpeg", &error, "quality", "50", NULL),
               error);
      else
        check (gdk_pixbuf_save_to_buffer (pb, &buf, &len, "png", &error, NULL), error);
      save_bytes ("image", imgs[i].name, buf, len);
      rgb = ps_image_load_rgb (path, imgs[i].h, imgs[i].w, &error);
      check (rgb != NULL, error);
    }
}

static GBytes *
gzip (const guint8 *data, gsize len)
{
  g_autoptr (GZlibCompressor) z = g_zlib_compressor_new (G_ZLIB_COMPRESSOR_FORMAT_GZIP, 9);
  g_autoptr (GOutputStream) mem = g_memory_output_stream_new_resizable ();
  g_autoptr (GOutputStream) out = g_converter_output_stream_new (mem, G_CONVERTER (z));
  g_autoptr (GError) error = NULL;

  check (g_output_stream_write_all (out, data, len, NULL, NULL, &error)
         && g_output_stream_close (out, NULL, &error), error);
  return g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (mem));
}

static void
save_idx (void)
{
  /* Two 3x4 images, and a label vector of 5. */
  guint8 images[16 + 24] = { 0, 0, 0x08, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4 };
  const guint8 labels[8 + 5] = { 0, 0, 0x08, 1, 0, 0, 0, 5, 3, 1, 4, 1, 5 };
  g_autoptr (GBytes) gz = NULL;
  const char *names[] = { "images.idx", "labels.idx", "images.idx.gz" };

  for (int i = 0; i < 24; i++)
    images[16 + i] = (guint8) (i * 11);
  save_bytes ("idx", names[0], images, sizeof images);
  save_bytes ("idx", names[1], labels, sizeof labels);
  gz = gzip (images, sizeof images);
  save_bytes ("idx", names[2], g_bytes_get_data (gz, NULL), g_bytes_get_size (gz));
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *path = seed_path ("idx", names[i]);
      g_autoptr (GError) error = NULL;
      g_autoptr (PsIdx) idx = ps_idx_load (path, NULL, &error);
      check (idx != NULL, error);
    }
}

/* fuzz-h5-edit's inputs: a template number, then edits (object, object, kind, ...). */
static void
save_edits (void)
{
  static const guint8 edits[][12] = {
    { 0 }, { 1 }, { 2 }, { 3 }, { 4 },
    { 1, 5, 0, 0, 200, 1, 3, 7, 0, 0 },        /* an attribute of the G group as a vector */
    { 0, 3, 0, 2, 0, 3, 12, 13, 0, 0 },        /* a weight replaced by a huge dataset */
    { 3, 1, 0, 3, 5, 2, 18, 1, 0, 0 },         /* a set's data as a string vector */
  };

  for (guint i = 0; i < G_N_ELEMENTS (edits); i++)
    {
      g_autofree char *name = g_strdup_printf ("edit-%u", i);
      save_bytes ("h5-edit", name, edits[i], i < 5 ? 1 : sizeof edits[i]);
    }
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;

  if (argc != 4)
    {
      g_printerr ("usage: %s OUTDIR DEMO_MODEL STAMP\n", argv[0]);
      return 1;
    }
  outdir = argv[1];
  g_setenv ("PRUNESCOPE_THREADS", "1", TRUE);
  save_models (argv[2]);
  save_g ();
  save_sets ();
  save_images ();
  save_idx ();
  save_edits ();
  check (g_file_set_contents (argv[3], "", 0, &error), error);
  return 0;
}
