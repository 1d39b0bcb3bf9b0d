/* test-app-views.c: the channel view's geometry at several sizes and scales (Xvfb) — weak
 * channels visible on the square-root and log scales, channel numbers that never overlap,
 * the "N pruned" label clear of the bars, the legend clear of the title — and its keyboard:
 * Tab reaches it, Left/Right move a highlighted channel whose numbers it shows. */
#define G_LOG_DOMAIN "test-app-views"

#include "config.h"

#include <gtk/gtk.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ps-channel-view.h"
#include "ps-model.h"
#include "ps-sweep.h"
#include "ps-test-util.h"
#include "ps-test-window.h"

#define N 60

static int order[N];
static double clean[N], poisoned[N];

/* Like lab3's last convolution: a few strong channels, many three or four orders of
 * magnitude weaker, two dead ones; the pruning order sorts the clean means. */
static void
make_means (void)
{
  for (int c = 0; c < N; c++)
    {
      clean[c] = c % 2 ? 0.5 + 3.0 * c / N : 2e-4 * (1 + c % 7);
      poisoned[c] = c % 5 == 0 ? 6.0 : clean[c] * 1.3;
    }
  clean[4] = poisoned[4] = 0;
  clean[10] = 0;
  for (int c = 0; c < N; c++)
    order[c] = c;
  for (int i = 1; i < N; i++)
    for (int j = i; j > 0 && clean[order[j - 1]] > clean[order[j]]; j--)
      {
        int t = order[j];
        order[j] = order[j - 1];
        order[j - 1] = t;
      }
}

typedef struct {
  GtkWindow     *window;
  GtkWidget     *button;
  PsChannelView *view;
} Fixture;

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 0);

  f->window = GTK_WINDOW (gtk_window_new ());
  f->button = gtk_button_new_with_label ("before");
  f->view = PS_CHANNEL_VIEW (ps_channel_view_new ());
  gtk_widget_set_vexpand (GTK_WIDGET (f->view), TRUE);
  gtk_box_append (GTK_BOX (box), f->button);
  gtk_box_append (GTK_BOX (box), GTK_WIDGET (f->view));
  gtk_window_set_child (f->window, box);
  gtk_window_set_default_size (f->window, 700, 320);
  ps_channel_view_set_means (f->view, N, order, clean, poisoned, "conv_4");
  ps_channel_view_set_pruned (f->view, 38);
  gtk_window_present (f->window);
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  gtk_window_destroy (f->window);
  for (int i = 0; i < 20; i++)
    g_main_context_iteration (NULL, FALSE);
}

static gboolean
overlap (const graphene_rect_t *a, const graphene_rect_t *b)
{
  graphene_rect_t r;

  return a->size.width > 0 && a->size.height > 0 && b->size.width > 0 && b->size.height > 0
         && graphene_rect_intersection (a, b, &r) && r.size.width > 0.01 && r.size.height > 0.01;
}

static void
assert_inside (const graphene_rect_t *r, int width, int height)
{
  if (r->size.width <= 0)
    return;
  g_assert_cmpfloat (r->origin.x, >=, -0.01);
  g_assert_cmpfloat (r->origin.y, >=, -0.01);
  g_assert_cmpfloat (r->origin.x + r->size.width, <=, width + 0.01);
  g_assert_cmpfloat (r->origin.y + r->size.height, <=, height + 0.01);
}

/* The smallest nonzero mean's bar on each scale, and how many nonzero bars are under 1 px. */
static void
test_scales (Fixture *f, gconstpointer data)
{
  const char *names[] = { "linear", "square root", "log" };
  double smallest[3];
  int hidden[3];

  for (int s = PS_CHANNEL_SCALE_LINEAR; s <= PS_CHANNEL_SCALE_LOG; s++)
    {
      g_autoptr (PsChannelLayout) l = NULL;

      ps_channel_view_set_scale (f->view, s);
      l = ps_channel_view_compute_layout (f->view, 700, 320);
      g_assert_cmpint (l->n_bars, ==, N);
      smallest[s] = G_MAXDOUBLE;
      hidden[s] = 0;
      for (int r = 0; r < N; r++)
        {
          int c = order[r];

          for (int k = 0; k < 2; k++)
            {
              double v = k ? poisoned[c] : clean[c];
              const graphene_rect_t *bar = k ? &l->poisoned_bars[r] : &l->clean_bars[r];

              /* On the axis, inside the plot; zero is no bar at all. */
              g_assert_cmpfloat (fabs (bar->origin.y + bar->size.height
                                       - (l->plot.origin.y + l->plot.size.height)), <, 1e-6);
              g_assert_cmpfloat (bar->origin.y, >=, l->plot.origin.y - 1e-6);
              if (v == 0)
                g_assert_cmpfloat (bar->size.height, ==, 0);
              else
                {
                  smallest[s] = MIN (smallest[s], bar->size.height);
                  hidden[s] += bar->size.height < 1;
                }
            }
          /* Larger means, taller bars, on every scale. */
          if (r > 0)
            g_assert_cmpfloat (l->clean_bars[r].size.height, >=, l->clean_bars[r - 1].size.height);
        }
      g_test_message ("%s: smallest nonzero bar %.3f px, %d nonzero bars under 1 px (plot %.0f px high)",
                      names[s], smallest[s], hidden[s], l->plot.size.height);
    }
  /* The linear scale hides the weak channels; the others show every one. */
  g_assert_cmpint (hidden[PS_CHANNEL_SCALE_LINEAR], >=, 20);
  g_assert_cmpfloat (smallest[PS_CHANNEL_SCALE_SQRT], >=, 1);
  g_assert_cmpfloat (smallest[PS_CHANNEL_SCALE_LOG], >=, 1);
  g_assert_cmpint (hidden[PS_CHANNEL_SCALE_SQRT] + hidden[PS_CHANNEL_SCALE_LOG], ==, 0);
  /* On the log scale the weakest is a real share of the height, not a one-pixel stub. */
  g_assert_cmpfloat (smallest[PS_CHANNEL_SCALE_LOG], >=, 10);
}

/* The menu in the view chooses the scale. */
static void
test_scale_menu (Fixture *f, gconstpointer data)
{
  GtkWidget *menu = gtk_widget_get_first_child (GTK_WIDGET (f->view));
  g_autoptr (PsChannelLayout) before = NULL, after = NULL;
  int first = order[2];  /* the weakest nonzero clean mean */

  g_assert_true (GTK_IS_DROP_DOWN (menu));
  before = ps_channel_view_compute_layout (f->view, 700, 320);
  gtk_drop_down_set_selected (GTK_DROP_DOWN (menu), PS_CHANNEL_SCALE_LOG);
  g_assert_cmpint (ps_channel_view_get_scale (f->view), ==, PS_CHANNEL_SCALE_LOG);
  after = ps_channel_view_compute_layout (f->view, 700, 320);
  g_assert_cmpfloat (clean[first], >, 0);
  g_assert_cmpfloat (after->clean_bars[2].size.height, >, 10 * before->clean_bars[2].size.height);
  /* The menu is in its place, clear of the title and the plot. */
  g_assert_false (overlap (&after->scale_menu, &after->title));
  g_assert_false (overlap (&after->scale_menu, &after->plot));
  g_assert_false (overlap (&after->scale_menu, &after->legend));
}

static void
check_layout (PsChannelView *view, int width, int height, int pruned)
{
  g_autoptr (PsChannelLayout) l = NULL;

  ps_channel_view_set_pruned (view, pruned);
  l = ps_channel_view_compute_layout (view, width, height);
  /* Channel numbers: none overlaps another, all inside, the first under the first bar. */
  g_assert_cmpint (l->n_ticks, >=, 2);
  g_assert_cmpint (l->tick_ranks[0], ==, 0);
  for (int t = 0; t < l->n_ticks; t++)
    {
      assert_inside (&l->tick_labels[t], width, height);
      g_assert_false (overlap (&l->tick_labels[t], &l->plot));
      if (t > 0)
        g_assert_cmpfloat (l->tick_labels[t - 1].origin.x + l->tick_labels[t - 1].size.width, <,
                           l->tick_labels[t].origin.x);
    }
  /* The pruned count: inside the view, over no bar, clear of the title, legend and menu. */
  if (pruned > 0)
    {
      g_assert_cmpfloat (l->pruned_label.size.width, >, 0);
      assert_inside (&l->pruned_label, width, height);
      for (int r = 0; r < l->n_bars; r++)
        {
          g_assert_false (overlap (&l->pruned_label, &l->clean_bars[r]));
          g_assert_false (overlap (&l->pruned_label, &l->poisoned_bars[r]));
        }
      g_assert_false (overlap (&l->pruned_label, &l->title));
      g_assert_false (overlap (&l->pruned_label, &l->legend));
      g_assert_false (overlap (&l->pruned_label, &l->scale_menu));
    }
  /* The axis' values: the top one always, none touching another. */
  g_assert_cmpfloat (l->y_labels[2].size.width, >, 0);
  for (int k = 0; k < 3; k++)
    {
      assert_inside (&l->y_labels[k], width, height);
      g_assert_false (overlap (&l->y_labels[k], &l->plot));
      for (int j = k + 1; j < 3; j++)
        g_assert_false (overlap (&l->y_labels[k], &l->y_labels[j]));
      for (int t = 0; t < l->n_ticks; t++)
        g_assert_false (overlap (&l->y_labels[k], &l->tick_labels[t]));
    }
  /* The legend clear of the title and the menu; the ends' names clear of the numbers. */
  g_assert_false (overlap (&l->legend, &l->title));
  g_assert_false (overlap (&l->legend, &l->scale_menu));
  assert_inside (&l->zero_note, width, height);
  g_assert_false (overlap (&l->zero_note, &l->legend));
  g_assert_false (overlap (&l->zero_note, &l->scale_menu));
  g_assert_false (overlap (&l->zero_note, &l->title));
  for (int k = 0; k < 2; k++)
    for (int t = 0; t < l->n_ticks; t++)
      g_assert_false (overlap (&l->ends[k], &l->tick_labels[t]));
  assert_inside (&l->readout, width, height);
  g_assert_false (overlap (&l->readout, &l->ends[0]));
  g_assert_false (overlap (&l->readout, &l->ends[1]));
  if (width >= 1400)
    g_assert_cmpint (l->n_ticks, ==, N);
  /* With room for them, all three values of the axis. */
  if (l->plot.size.height >= 100)
    g_assert_cmpfloat (l->y_labels[0].size.width * l->y_labels[1].size.width, >, 0);
}

static void
test_layout (Fixture *f, gconstpointer data)
{
  const int sizes[][2] = { { 240, 160 }, { 400, 200 }, { 700, 320 }, { 1000, 400 }, { 1400, 500 } };
  const int pruned[] = { 1, 30, 38, 59, 60 };

  for (guint s = 0; s < G_N_ELEMENTS (sizes); s++)
    for (guint p = 0; p < G_N_ELEMENTS (pruned); p++)
      for (int cursor = -1; cursor <= 30; cursor += 31)
        {
          ps_channel_view_set_cursor (f->view, cursor);
          check_layout (f->view, sizes[s][0], sizes[s][1], pruned[p]);
        }
  {
    g_autoptr (PsChannelLayout) narrow = ps_channel_view_compute_layout (f->view, 240, 160);
    g_autoptr (PsChannelLayout) wide = ps_channel_view_compute_layout (f->view, 1400, 500);

    g_test_message ("channel numbers: %d at 240 px, %d at 1400 px", narrow->n_ticks, wide->n_ticks);
    g_assert_cmpint (narrow->n_ticks, <, wide->n_ticks);
  }
}

static gboolean
view_allocated (gpointer data)
{
  return gtk_widget_get_width (data) > 0;
}

static void
wait_allocated (GtkWidget *view)
{
  gint64 end = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;

  while (!view_allocated (view) && g_get_monotonic_time () < end)
    g_main_context_iteration (NULL, TRUE);
  g_assert_true (view_allocated (view));
}

static gboolean
count_frame (GtkWidget *widget, GdkFrameClock *clock, gpointer data)
{
  int *frames = data;

  gtk_widget_queue_draw (widget);
  return ++*frames < 2 ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

/* Two frames drawn after the last change (no sleeping). */
static void
wait_frames (GtkWidget *widget)
{
  int frames = 0;
  gint64 end = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;

  gtk_widget_add_tick_callback (widget, count_frame, &frames, NULL);
  while (frames < 2 && g_get_monotonic_time () < end)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpint (frames, >=, 2);
}

/* A picture of @window as $PS_BUILD_DIR/@name, for people to look at. */
static void
save_screenshot (GtkWindow *window, const char *name)
{
  wait_frames (GTK_WIDGET (window));
  ps_test_save_widget_screenshot (GTK_WIDGET (window), name);
}

static void
test_keyboard (Fixture *f, gconstpointer data)
{
  GtkWidget *view = GTK_WIDGET (f->view);
  g_autofree char *readout = NULL, *want = NULL;

  wait_allocated (view);
  /* Tab from the button before it lands on the view. */
  gtk_widget_grab_focus (f->button);
  g_assert_true (gtk_widget_child_focus (GTK_WIDGET (f->window), GTK_DIR_TAB_FORWARD));
  g_assert_true (gtk_root_get_focus (GTK_ROOT (f->window)) == view);

  g_assert_null (ps_channel_view_get_readout (f->view));
  /* Right, Right, Left, End, Home — as the key bindings call them. */
  g_assert_true (gtk_widget_activate_action (view, "channels.move", "i", 1));
  g_assert_cmpint (ps_channel_view_get_cursor (f->view), ==, 0);
  g_assert_true (gtk_widget_activate_action (view, "channels.move", "i", 1));
  g_assert_true (gtk_widget_activate_action (view, "channels.move", "i", 1));
  g_assert_true (gtk_widget_activate_action (view, "channels.move", "i", -1));
  g_assert_cmpint (ps_channel_view_get_cursor (f->view), ==, 1);
  readout = ps_channel_view_get_readout (f->view);
  want = g_strdup_printf ("Channel %d (pruned, 2 of %d): mean %.4g clean, %.4g poisoned",
                          order[1], N, clean[order[1]], poisoned[order[1]]);
  g_assert_cmpstr (readout, ==, want);
  g_assert_true (gtk_widget_activate_action (view, "channels.move", "i", G_MAXINT32));
  g_assert_cmpint (ps_channel_view_get_cursor (f->view), ==, N - 1);
  g_clear_pointer (&readout, g_free);
  readout = ps_channel_view_get_readout (f->view);
  g_assert_true (strstr (readout, "(kept, 60 of 60)") != NULL);
  g_assert_true (gtk_widget_activate_action (view, "channels.move", "i", 1));
  g_assert_cmpint (ps_channel_view_get_cursor (f->view), ==, N - 1);
  g_assert_true (gtk_widget_activate_action (view, "channels.move", "i", G_MININT32));
  g_assert_cmpint (ps_channel_view_get_cursor (f->view), ==, 0);
  /* The highlighted channel's numbers are drawn, not only kept. */
  {
    g_autoptr (PsChannelLayout) l = ps_channel_view_compute_layout (f->view, 700, 320);
    g_assert_cmpfloat (l->readout.size.width, >, 0);
  }
  /* A click on a bar highlights its channel too. */
  {
    g_autoptr (GListModel) controllers = gtk_widget_observe_controllers (view);
    int w = gtk_widget_get_width (view), h = gtk_widget_get_height (view);
    g_autoptr (PsChannelLayout) l = ps_channel_view_compute_layout (f->view, w, h);
    const graphene_rect_t *bar = &l->clean_bars[10];
    gboolean clicked = FALSE;

    gtk_widget_grab_focus (f->button);
    for (guint i = 0; i < g_list_model_get_n_items (controllers); i++)
      {
        g_autoptr (GObject) c = g_list_model_get_item (controllers, i);

        if (GTK_IS_GESTURE_CLICK (c))
          {
            g_signal_emit_by_name (c, "pressed", 1, bar->origin.x + bar->size.width / 2,
                                   l->plot.origin.y + l->plot.size.height / 2);
            clicked = TRUE;
          }
      }
    g_assert_true (clicked);
    g_assert_cmpint (ps_channel_view_get_cursor (f->view), ==, 10);
    g_assert_true (gtk_widget_has_focus (view));
  }
  ps_channel_view_set_cursor (f->view, 20);
  gtk_window_set_focus_visible (f->window, TRUE);
  g_assert_true (gtk_widget_has_visible_focus (view));
  save_screenshot (f->window, "app-channels-keyboard.png");
}

/* Pictures of the three scales, wide and narrow. */
static void
test_screenshots (Fixture *f, gconstpointer data)
{
  const char *names[] = { "linear", "sqrt", "log" };

  for (int narrow = 0; narrow < 2; narrow++)
    for (int s = PS_CHANNEL_SCALE_LINEAR; s <= PS_CHANNEL_SCALE_LOG; s++)
      {
        g_autofree char *name = g_strdup_printf ("app-channels-%s%s.png", names[s], narrow ? "-narrow" : "");

        gint64 end = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
        int want = narrow ? 300 : 700;

        gtk_window_set_default_size (f->window, want, narrow ? 200 : 320);
        ps_channel_view_set_scale (f->view, s);
        while (gtk_widget_get_width (GTK_WIDGET (f->window)) != want && g_get_monotonic_time () < end)
          g_main_context_iteration (NULL, TRUE);
        save_screenshot (f->window, name);
      }
}

/* The lab's real lab3 BadNet on the lab's real faces: how many channels a linear scale
 * flattens, and that the other scales show every one. */
static void
test_lab3 (Fixture *f, gconstpointer data)
{
  const char *fixtures = g_getenv ("PS_FIXTURES");
  g_autofree char *path = fixtures ? g_build_filename (fixtures, "weights", "lab3_bd_weights.h5", NULL) : NULL;
  g_autofree char *images = fixtures ? g_build_filename (fixtures, "images", NULL) : NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (PsModel) lab3 = NULL;
  g_autoptr (PsDataset) faces = NULL, sun = NULL;
  g_autoptr (PsSweep) sweep = NULL;
  const PsDataset *sets[PS_N_SETS] = { NULL };
  int hidden[3] = { 0 };
  double smallest[3] = { G_MAXDOUBLE, G_MAXDOUBLE, G_MAXDOUBLE }, height = 0;

  if (path == NULL || !g_file_test (path, G_FILE_TEST_EXISTS))
    {
      g_test_skip ("the lab's fixtures (PS_FIXTURES) are not there");
      return;
    }
  lab3 = ps_model_load (path, &error);
  g_assert_no_error (error);
  faces = ps_test_load_faces (images, "cl_");
  sun = ps_test_load_faces (images, "sun_");
  sets[PS_SET_VALID] = faces;
  sets[PS_SET_POISONED] = sun;
  sweep = ps_sweep_run (lab3, sets, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  ps_channel_view_set_sweep (f->view, sweep);
  g_assert_cmpint (ps_channel_view_get_n_channels (f->view), ==, 60);
  for (int s = PS_CHANNEL_SCALE_LINEAR; s <= PS_CHANNEL_SCALE_LOG; s++)
    {
      g_autoptr (PsChannelLayout) l = NULL;

      ps_channel_view_set_scale (f->view, s);
      l = ps_channel_view_compute_layout (f->view, 700, 320);
      height = l->plot.size.height;
      for (int r = 0; r < l->n_bars; r++)
        {
          double v = ps_sweep_channel_means (sweep, PS_SET_VALID)[ps_sweep_order (sweep)[r]];

          if (v > 0)
            {
              hidden[s] += l->clean_bars[r].size.height < 1;
              smallest[s] = MIN (smallest[s], l->clean_bars[r].size.height);
            }
        }
    }
  g_test_message ("lab3 on 5 real faces, clean bars under 1 px in a %.0f px plot: linear %d, "
                  "square root %d, log %d of 60 (smallest nonzero: %.2f / %.2f / %.2f px)", height,
                  hidden[0], hidden[1], hidden[2], smallest[0], smallest[1], smallest[2]);
  g_assert_cmpint (hidden[PS_CHANNEL_SCALE_SQRT] + hidden[PS_CHANNEL_SCALE_LOG], ==, 0);
  g_assert_cmpfloat (smallest[PS_CHANNEL_SCALE_LOG], >=, smallest[PS_CHANNEL_SCALE_LINEAR]);
  /* The channels with no bar at all are counted in words. */
  {
    g_autoptr (PsChannelLayout) l = ps_channel_view_compute_layout (f->view, 700, 320);
    int zero = 0;

    for (int c = 0; c < 60; c++)
      zero += ps_sweep_channel_means (sweep, PS_SET_VALID)[c] == 0;
    g_test_message ("lab3 on 5 real faces: %d of 60 channels at 0 on clean data", zero);
    g_assert_true ((l->zero_note.size.width > 0) == (zero > 0));
  }
  wait_allocated (GTK_WIDGET (f->view));
  save_screenshot (f->window, "app-channels-lab3-log.png");
}

int
main (int argc, char *argv[])
{
  gtk_test_init (&argc, &argv, NULL);
  /* The application's style sheet (its focus ring), as PsApplication loads it. */
  {
    g_autoptr (GtkCssProvider) css = gtk_css_provider_new ();

    gtk_css_provider_load_from_resource (css, "/org/prunescope/Prunescope/style.css");
    gtk_style_context_add_provider_for_display (gdk_display_get_default (), GTK_STYLE_PROVIDER (css),
                                                GTK_STYLE_PROVIDER_PRIORITY_APPLICATION);
  }
  make_means ();
  g_test_add ("/app/channels/scales", Fixture, NULL, fixture_set_up, test_scales, fixture_tear_down);
  g_test_add ("/app/channels/scale-menu", Fixture, NULL, fixture_set_up, test_scale_menu, fixture_tear_down);
  g_test_add ("/app/channels/layout", Fixture, NULL, fixture_set_up, test_layout, fixture_tear_down);
  g_test_add ("/app/channels/keyboard", Fixture, NULL, fixture_set_up, test_keyboard, fixture_tear_down);
  g_test_add ("/app/channels/lab3", Fixture, NULL, fixture_set_up, test_lab3, fixture_tear_down);
  g_test_add ("/app/channels/screenshots", Fixture, NULL, fixture_set_up, test_screenshots, fixture_tear_down);
  return g_test_run ();
}
