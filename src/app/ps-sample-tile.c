/* ps-sample-tile.c: an image from the data with what B, B′ and G make of it, in words and colour */
#define G_LOG_DOMAIN "ps-sample-tile"

#include "config.h"

#include <glib/gi18n.h>

#include "ps-sample-tile.h"

#define ZOOM 2

/* What a prediction means for this image. A poisoned image's label is the attack's target,
 * so "not the target" is only "resisted"; whether it is also right needs the true class. */
typedef enum {
  MARK_CORRECT,
  MARK_WRONG,
  MARK_FLAGGED,          /* G's extra class N */
  MARK_ATTACK,           /* a poisoned image given the target */
  MARK_RESISTED,         /* not the target; the true class unknown */
  MARK_RESISTED_RIGHT,   /* not the target, the true class */
  MARK_RESISTED_WRONG,   /* not the target, nor the true class */
} Mark;

struct _PsSampleTile {
  GtkWidget        parent_instance;

  cairo_surface_t *surface;
  int              label;       /* the set's label: the target for a poisoned image */
  int              true_class;  /* a poisoned image's class before poisoning, -1 unknown */
  int              index;
  gboolean         poisoned;

  GtkDrawingArea  *image;
  GtkLabel        *title_label;
  GtkLabel        *truth_label;
  GtkLabel        *b_label;
  GtkLabel        *bp_label;
  GtkLabel        *g_label;
};

G_DEFINE_FINAL_TYPE (PsSampleTile, ps_sample_tile, GTK_TYPE_WIDGET)

static void
draw_image (GtkDrawingArea *area, cairo_t *cr, int width, int height, gpointer data)
{
  PsSampleTile *self = data;
  cairo_pattern_t *pattern;

  if (self->surface == NULL)
    return;
  cairo_scale (cr, (double) width / cairo_image_surface_get_width (self->surface),
               (double) height / cairo_image_surface_get_height (self->surface));
  cairo_set_source_surface (cr, self->surface, 0, 0);
  /* Nearest neighbour keeps the pixels of these small faces sharp. */
  pattern = cairo_get_source (cr);
  cairo_pattern_set_filter (pattern, CAIRO_FILTER_NEAREST);
  cairo_paint (cr);
}

/* Pixel (y, x, channel) as a byte; float sets may be 0..255 or 0..1. */
static guint8
pixel (const PsDataset *ds, gsize offset, double range)
{
  double v;

  if (ds->u8 != NULL)
    return ds->u8[offset];
  v = ds->f32[offset] * (255.0 / range);
  return (guint8) CLAMP (v + 0.5, 0, 255);
}

static double
float_range (const PsDataset *ds, gsize start, gsize count)
{
  double max = 0;

  if (ds->f32 == NULL)
    return 255;
  for (gsize i = 0; i < count; i++)
    max = MAX (max, ds->f32[start + i]);
  return max <= 1.0 ? 1.0 : 255.0;
}

static cairo_surface_t *
make_surface (const PsDataset *ds, int index)
{
  cairo_surface_t *s = cairo_image_surface_create (CAIRO_FORMAT_RGB24, ds->w, ds->h);
  gsize start = (gsize) index * ds->h * ds->w * ds->c;
  double range = float_range (ds, start, (gsize) ds->h * ds->w * ds->c);
  guint8 *data = cairo_image_surface_get_data (s);
  int stride = cairo_image_surface_get_stride (s);

  cairo_surface_flush (s);
  for (int y = 0; y < ds->h; y++)
    for (int x = 0; x < ds->w; x++)
      {
        gsize o = start + ((gsize) y * ds->w + x) * ds->c;
        guint8 r = pixel (ds, o, range);
        guint8 g = ds->c >= 3 ? pixel (ds, o + 1, range) : r;
        guint8 b = ds->c >= 3 ? pixel (ds, o + 2, range) : r;

        *(guint32 *) (gpointer) (data + y * stride + x * 4) = (guint32) r << 16 | (guint32) g << 8 | b;
      }
  cairo_surface_mark_dirty (s);
  return s;
}

static Mark
mark_of (PsSampleTile *self, int cls, int n_classes)
{
  if (cls == n_classes)
    return MARK_FLAGGED;
  if (!self->poisoned || self->true_class == self->label)
    return cls == self->label ? MARK_CORRECT : MARK_WRONG;
  if (cls == self->label)
    return MARK_ATTACK;
  if (self->true_class < 0)
    return MARK_RESISTED;
  return cls == self->true_class ? MARK_RESISTED_RIGHT : MARK_RESISTED_WRONG;
}

/* Words first; the symbol and the colour only repeat them. */
static const char *
mark_text (Mark m)
{
  switch (m)
    {
    case MARK_CORRECT:        return _("✓ correct");
    case MARK_WRONG:          return _("✗ wrong");
    case MARK_FLAGGED:        return _("⚑ flagged by G");
    case MARK_ATTACK:         return _("✗ attack succeeded");
    case MARK_RESISTED:       return _("✓ resisted");
    case MARK_RESISTED_RIGHT: return _("✓ resisted, correct");
    case MARK_RESISTED_WRONG: return _("~ resisted, wrong");
    default:                  return "";
    }
}

static const char *
mark_css (Mark m)
{
  switch (m)
    {
    case MARK_CORRECT:
    case MARK_RESISTED:
    case MARK_RESISTED_RIGHT: return "good";
    case MARK_FLAGGED:        return "flagged";
    case MARK_RESISTED_WRONG: return "resisted-wrong";
    case MARK_WRONG:
    case MARK_ATTACK:
    default:                  return "bad";
    }
}

static void
show_prediction (PsSampleTile *self, GtkLabel *label, const char *who, int cls, int n_classes)
{
  static const char *classes[] = { "good", "bad", "flagged", "resisted-wrong" };
  Mark m = mark_of (self, cls, n_classes);
  g_autofree char *text = NULL;

  if (m == MARK_FLAGGED)
    text = g_strdup_printf ("%s: N  %s", who, mark_text (m));
  else
    text = g_strdup_printf ("%s: %d  %s", who, cls, mark_text (m));
  gtk_label_set_text (label, text);
  for (guint i = 0; i < G_N_ELEMENTS (classes); i++)
    if (g_str_equal (classes[i], mark_css (m)))
      gtk_widget_add_css_class (GTK_WIDGET (label), classes[i]);
    else
      gtk_widget_remove_css_class (GTK_WIDGET (label), classes[i]);
}

void
ps_sample_tile_set_image (PsSampleTile *self, const PsDataset *ds, int index, gboolean poisoned)
{
  g_autofree char *title = NULL;

  g_return_if_fail (PS_IS_SAMPLE_TILE (self));
  g_return_if_fail (index >= 0 && index < ds->n);

  g_clear_pointer (&self->surface, cairo_surface_destroy);
  self->surface = make_surface (ds, index);
  self->label = ds->labels[index];
  self->true_class = poisoned && ds->clean_labels ? ds->clean_labels[index] : -1;
  self->index = ds->index ? ds->index[index] : index; /* its place in the whole set */
  self->poisoned = poisoned;
  gtk_drawing_area_set_content_width (self->image, ds->w * ZOOM);
  gtk_drawing_area_set_content_height (self->image, ds->h * ZOOM);
  title = poisoned ? g_strdup_printf (_("#%d · target %d"), self->index, self->label)
                   : g_strdup_printf (_("#%d · label %d"), self->index, self->label);
  gtk_label_set_text (self->title_label, title);
  if (poisoned)
    {
      g_autofree char *truth = self->true_class >= 0 ? g_strdup_printf (_("true class %d"), self->true_class)
                                                     : g_strdup (_("true class not in the set"));
      gtk_label_set_text (self->truth_label, truth);
    }
  gtk_widget_set_visible (GTK_WIDGET (self->truth_label), poisoned);
  gtk_widget_queue_draw (GTK_WIDGET (self->image));
}

void
ps_sample_tile_set_predictions (PsSampleTile *self, int b, int bp, int g, int n_classes)
{
  g_autofree char *description = NULL;
  GtkWidget *parent;

  g_return_if_fail (PS_IS_SAMPLE_TILE (self));

  show_prediction (self, self->b_label, "B", b, n_classes);
  show_prediction (self, self->bp_label, "B′", bp, n_classes);
  show_prediction (self, self->g_label, "G", g, n_classes);
  description = ps_sample_tile_describe (self);
  gtk_accessible_update_property (GTK_ACCESSIBLE (self), GTK_ACCESSIBLE_PROPERTY_DESCRIPTION,
                                  description, -1);
  /* The focusable cell around the tile speaks for it. */
  parent = gtk_widget_get_parent (GTK_WIDGET (self));
  if (parent != NULL)
    gtk_accessible_update_property (GTK_ACCESSIBLE (parent), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                    description, -1);
}

char *
ps_sample_tile_describe (PsSampleTile *self)
{
  g_autofree char *kind = self->poisoned ? g_strdup_printf (_("Poisoned image, %s"),
                                                            gtk_label_get_text (self->truth_label))
                                         : g_strdup (_("Clean image"));

  return g_strdup_printf ("%s %s; %s; %s; %s", kind, gtk_label_get_text (self->title_label),
                          gtk_label_get_text (self->b_label), gtk_label_get_text (self->bp_label),
                          gtk_label_get_text (self->g_label));
}

int
ps_sample_tile_get_index (PsSampleTile *self)
{
  g_return_val_if_fail (PS_IS_SAMPLE_TILE (self), -1);
  return self->index;
}

static void
ps_sample_tile_dispose (GObject *object)
{
  PsSampleTile *self = PS_SAMPLE_TILE (object);

  gtk_widget_dispose_template (GTK_WIDGET (self), PS_TYPE_SAMPLE_TILE);
  g_clear_pointer (&self->surface, cairo_surface_destroy);
  G_OBJECT_CLASS (ps_sample_tile_parent_class)->dispose (object);
}

static void
ps_sample_tile_class_init (PsSampleTileClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = ps_sample_tile_dispose;

  gtk_widget_class_set_template_from_resource (widget_class, "/org/prunescope/Prunescope/ps-sample-tile.ui");
  gtk_widget_class_set_layout_manager_type (widget_class, GTK_TYPE_BOX_LAYOUT);
  gtk_widget_class_set_css_name (widget_class, "pssampletile");
  gtk_widget_class_set_accessible_role (widget_class, GTK_ACCESSIBLE_ROLE_GROUP);
  gtk_widget_class_bind_template_child (widget_class, PsSampleTile, image);
  gtk_widget_class_bind_template_child (widget_class, PsSampleTile, title_label);
  gtk_widget_class_bind_template_child (widget_class, PsSampleTile, truth_label);
  gtk_widget_class_bind_template_child (widget_class, PsSampleTile, b_label);
  gtk_widget_class_bind_template_child (widget_class, PsSampleTile, bp_label);
  gtk_widget_class_bind_template_child (widget_class, PsSampleTile, g_label);
}

static void
ps_sample_tile_init (PsSampleTile *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  gtk_orientable_set_orientation (GTK_ORIENTABLE (gtk_widget_get_layout_manager (GTK_WIDGET (self))),
                                  GTK_ORIENTATION_VERTICAL);
  gtk_box_layout_set_spacing (GTK_BOX_LAYOUT (gtk_widget_get_layout_manager (GTK_WIDGET (self))), 2);
  gtk_drawing_area_set_draw_func (self->image, draw_image, self, NULL);
}

GtkWidget *
ps_sample_tile_new (void)
{
  return g_object_new (PS_TYPE_SAMPLE_TILE, NULL);
}
