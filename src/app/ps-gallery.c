/* ps-gallery.c: picks evenly spaced images once per sweep; a step change only relabels them.
 * Tab reaches the tiles, the arrow keys move between them and across the two sets. */
#define G_LOG_DOMAIN "ps-gallery"

#include "config.h"

#include <glib/gi18n.h>

#include "ps-gallery.h"
#include "ps-sample-tile.h"

typedef struct {
  PsSetKind    set;
  int          index;
  PsSampleTile *tile;
} Sample;

struct _PsGallery {
  GtkWidget      parent_instance;

  const PsSweep *sweep;
  GArray        *samples;

  GtkWidget     *box;
  GtkLabel      *clean_title;
  GtkFlowBox    *clean_box;
  GtkLabel      *poisoned_title;
  GtkFlowBox    *poisoned_box;
  GtkWidget     *empty_label;
};

G_DEFINE_FINAL_TYPE (PsGallery, ps_gallery, GTK_TYPE_WIDGET)

/* The tiles exist from the start (templates take a while to build); a sweep only fills them. */
static void
fill_tiles (PsGallery *self, const PsDataset *ds, PsSetKind set, GtkFlowBox *box)
{
  int count = ds ? MIN (PS_GALLERY_SAMPLES, ds->n) : 0, i = 0;

  for (GtkWidget *child = gtk_widget_get_first_child (GTK_WIDGET (box)); child != NULL;
       child = gtk_widget_get_next_sibling (child), i++)
    {
      PsSampleTile *tile = PS_SAMPLE_TILE (gtk_flow_box_child_get_child (GTK_FLOW_BOX_CHILD (child)));
      /* @ds may be a sample of the set: its index table gives each image's place there */
      int j = count ? (int) ((gint64) i * ds->n / count) : 0;
      Sample s = { set, ds && ds->index ? ds->index[j] : j, tile };

      gtk_widget_set_visible (child, i < count);
      if (i >= count)
        continue;
      ps_sample_tile_set_image (tile, ds, j, set == PS_SET_POISONED);
      g_array_append_val (self->samples, s);
    }
}

static GtkFlowBoxChild *
first_visible (GtkFlowBox *box, int column)
{
  GtkFlowBoxChild *first = NULL;

  for (int i = 0;; i++)
    {
      GtkFlowBoxChild *child = gtk_flow_box_get_child_at_index (box, i);

      if (child == NULL || !gtk_widget_get_visible (GTK_WIDGET (child)))
        return first;
      if (first == NULL || i <= column)
        first = child;
    }
}

static int
focused_index (GtkFlowBox *box)
{
  GtkWidget *focus = gtk_widget_get_focus_child (GTK_WIDGET (box));

  return focus ? gtk_flow_box_child_get_index (GTK_FLOW_BOX_CHILD (focus)) : 0;
}

/* Down from the clean row goes to the poisoned one and back, in about the same column. */
static gboolean
on_keynav_failed (GtkFlowBox *box, GtkDirectionType direction, PsGallery *self)
{
  GtkFlowBox *other = NULL;
  GtkFlowBoxChild *target;

  if (box == self->clean_box && direction == GTK_DIR_DOWN)
    other = self->poisoned_box;
  else if (box == self->poisoned_box && direction == GTK_DIR_UP)
    other = self->clean_box;
  if (other == NULL || !gtk_widget_get_visible (GTK_WIDGET (other))
      || (target = first_visible (other, focused_index (box))) == NULL)
    return FALSE;
  gtk_widget_grab_focus (GTK_WIDGET (target));
  return TRUE;
}

PsSampleTile *
ps_gallery_get_tile (PsGallery *self, gboolean poisoned, int i)
{
  GtkFlowBoxChild *child;

  g_return_val_if_fail (PS_IS_GALLERY (self), NULL);

  child = gtk_flow_box_get_child_at_index (poisoned ? self->poisoned_box : self->clean_box, i);
  if (child == NULL || !gtk_widget_get_visible (GTK_WIDGET (child)))
    return NULL;
  return PS_SAMPLE_TILE (gtk_flow_box_child_get_child (child));
}

void
ps_gallery_set_sweep (PsGallery *self, const PsSweep *sweep, const PsDataset * const sets[PS_N_SETS])
{
  PsSetKind clean = PS_SET_TEST;

  g_return_if_fail (PS_IS_GALLERY (self));

  self->sweep = sweep;
  g_array_set_size (self->samples, 0);
  if (sweep != NULL && sets[PS_SET_TEST] == NULL)
    clean = PS_SET_VALID;
  fill_tiles (self, sweep ? sets[clean] : NULL, clean, self->clean_box);
  fill_tiles (self, sweep ? sets[PS_SET_POISONED] : NULL, PS_SET_POISONED, self->poisoned_box);

  gtk_label_set_text (self->clean_title, clean == PS_SET_TEST ? _("Clean Test Images")
                                                              : _("Clean Validation Images"));
  gtk_widget_set_visible (GTK_WIDGET (self->clean_title), sweep != NULL);
  gtk_widget_set_visible (GTK_WIDGET (self->poisoned_title), sweep != NULL && sets[PS_SET_POISONED]);
  gtk_widget_set_visible (GTK_WIDGET (self->poisoned_box), sweep != NULL && sets[PS_SET_POISONED]);
  gtk_widget_set_visible (self->empty_label, sweep == NULL);
}

void
ps_gallery_set_step (PsGallery *self, int step)
{
  g_return_if_fail (PS_IS_GALLERY (self));

  if (self->sweep == NULL || step < 0 || step >= ps_sweep_n_steps (self->sweep))
    return;
  for (guint i = 0; i < self->samples->len; i++)
    {
      Sample *s = &g_array_index (self->samples, Sample, i);

      ps_sample_tile_set_predictions (s->tile,
                                      ps_sweep_prediction (self->sweep, s->set, 0, s->index),
                                      ps_sweep_prediction (self->sweep, s->set, step, s->index),
                                      ps_sweep_g_prediction (self->sweep, s->set, step, s->index),
                                      ps_sweep_n_classes (self->sweep));
    }
}

static void
ps_gallery_dispose (GObject *object)
{
  PsGallery *self = PS_GALLERY (object);

  gtk_widget_dispose_template (GTK_WIDGET (self), PS_TYPE_GALLERY);
  g_clear_pointer (&self->samples, g_array_unref);
  G_OBJECT_CLASS (ps_gallery_parent_class)->dispose (object);
}

static void
ps_gallery_class_init (PsGalleryClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = ps_gallery_dispose;

  gtk_widget_class_set_template_from_resource (widget_class, "/org/prunescope/Prunescope/ps-gallery.ui");
  gtk_widget_class_set_layout_manager_type (widget_class, GTK_TYPE_BIN_LAYOUT);
  gtk_widget_class_set_css_name (widget_class, "psgallery");
  gtk_widget_class_bind_template_child (widget_class, PsGallery, box);
  gtk_widget_class_bind_template_child (widget_class, PsGallery, clean_title);
  gtk_widget_class_bind_template_child (widget_class, PsGallery, clean_box);
  gtk_widget_class_bind_template_child (widget_class, PsGallery, poisoned_title);
  gtk_widget_class_bind_template_child (widget_class, PsGallery, poisoned_box);
  gtk_widget_class_bind_template_child (widget_class, PsGallery, empty_label);
}

static void
ps_gallery_init (PsGallery *self)
{
  const PsDataset *none[PS_N_SETS] = { NULL };

  self->samples = g_array_new (FALSE, FALSE, sizeof (Sample));
  gtk_widget_init_template (GTK_WIDGET (self));
  for (int i = 0; i < PS_GALLERY_SAMPLES; i++)
    {
      gtk_flow_box_append (self->clean_box, ps_sample_tile_new ());
      gtk_flow_box_append (self->poisoned_box, ps_sample_tile_new ());
    }
  g_signal_connect (self->clean_box, "keynav-failed", G_CALLBACK (on_keynav_failed), self);
  g_signal_connect (self->poisoned_box, "keynav-failed", G_CALLBACK (on_keynav_failed), self);
  ps_gallery_set_sweep (self, NULL, none);
}
