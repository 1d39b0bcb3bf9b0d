/* ps-stats-panel.c: reads every number from the finished sweep; computes nothing itself */
#define G_LOG_DOMAIN "ps-stats-panel"

#include "config.h"

#include <glib/gi18n.h>
#include <math.h>

#include "ps-stats-panel.h"

typedef struct {
  GtkLabel *title, *b, *bp, *g, *flag;
} Row;

struct _PsStatsPanel {
  GtkWidget      parent_instance;

  const PsSweep *sweep;
  int            step;

  GtkWidget     *box;
  GtkLabel      *point_label;
  GtkLabel      *rule_label;
  GtkWidget     *grid;
  GtkWidget     *grid_caption;
  GtkLabel      *headline_label;
  GtkLabel      *verdict_label;
  GtkLabel      *notes_label;
  GtkLabel      *thresholds_label;
  GtkLabel      *stale_label;
  const PsVerdict *verdict;
  gboolean       stale;
  GtkLabel      *channels_title;
  GtkLabel      *channels_label;
  Row            rows[PS_N_SETS];
};

G_DEFINE_FINAL_TYPE (PsStatsPanel, ps_stats_panel, GTK_TYPE_WIDGET)

static void
set_percent (GtkLabel *label, double value)
{
  g_autofree char *text = isnan (value) ? g_strdup ("—") : g_strdup_printf ("%.2f %%", value);

  gtk_label_set_text (label, text);
}

static void
show_row (PsStatsPanel *self, PsSetKind set)
{
  Row *row = &self->rows[set];
  gboolean present = ps_sweep_has_set (self->sweep, set);
  double b = NAN, bp = NAN, g = NAN, flag = NAN, unused;

  if (present)
    {
      ps_sweep_set_metrics (self->sweep, set, 0, &b, &unused, &unused);
      ps_sweep_set_metrics (self->sweep, set, self->step, &bp, &g, &flag);
    }
  set_percent (row->b, b);
  set_percent (row->bp, bp);
  set_percent (row->g, g);
  set_percent (row->flag, flag);
  gtk_widget_set_opacity (GTK_WIDGET (row->title), present ? 1.0 : 0.5);
}

static void
show_point (PsStatsPanel *self)
{
  const PsSweepStep *r = ps_sweep_get_step (self->sweep, self->step);
  g_autofree char *point = NULL;

  point = g_strdup_printf (ngettext ("%d of %d channel pruned", "%d of %d channels pruned",
                                     ps_sweep_n_channels (self->sweep)),
                           r->pruned, ps_sweep_n_channels (self->sweep));
  gtk_label_set_text (self->point_label, point);
}

static void
show_verdict (PsStatsPanel *self)
{
  static const char *classes[] = { "unknown", "disarmed", "weakened", "not-disarmed", "distrust" };
  const PsVerdict *v = self->verdict;
  g_autoptr (GString) notes = g_string_new (NULL);
  const char *cls;

  gtk_widget_set_visible (GTK_WIDGET (self->headline_label), v != NULL);
  gtk_widget_set_visible (GTK_WIDGET (self->verdict_label), v != NULL);
  gtk_widget_set_visible (GTK_WIDGET (self->thresholds_label), v != NULL);
  gtk_widget_set_visible (GTK_WIDGET (self->stale_label), v != NULL && self->stale);
  if (v == NULL)
    {
      gtk_widget_set_visible (GTK_WIDGET (self->notes_label), FALSE);
      return;
    }
  for (guint i = 0; i < G_N_ELEMENTS (classes); i++)
    gtk_widget_remove_css_class (GTK_WIDGET (self->headline_label), classes[i]);
  cls = v->warnings & ~(guint) PS_VERDICT_WARN_UNREACHED ? classes[4] : classes[v->level];
  gtk_widget_add_css_class (GTK_WIDGET (self->headline_label), cls);
  gtk_label_set_text (self->headline_label, v->headline);
  gtk_label_set_text (self->verdict_label, v->summary);
  gtk_label_set_text (self->rule_label, v->rule);
  for (guint i = 0; i < v->notes->len; i++)
    g_string_append_printf (notes, i ? "\n\n⚠ %s" : "⚠ %s", (char *) g_ptr_array_index (v->notes, i));
  gtk_label_set_text (self->notes_label, notes->str);
  gtk_widget_set_visible (GTK_WIDGET (self->notes_label), notes->len > 0);
}

static void
show_channels (PsStatsPanel *self)
{
  const int *order = ps_sweep_order (self->sweep);
  g_autoptr (GString) list = g_string_new (NULL);
  g_autofree char *title = NULL;

  for (int i = 0; i < self->step; i++)
    g_string_append_printf (list, i ? ", %d" : "%d", order[i]);
  title = g_strdup_printf (_("Pruned Channels (%d, in pruning order)"), self->step);
  gtk_label_set_text (self->channels_title, title);
  gtk_label_set_text (self->channels_label, list->len ? list->str : _("None"));
}

static void
refresh (PsStatsPanel *self)
{
  gboolean ready = self->sweep != NULL && self->step >= 0 && self->step < ps_sweep_n_steps (self->sweep);

  gtk_widget_set_visible (self->grid, ready);
  gtk_widget_set_visible (self->grid_caption, ready);
  gtk_widget_set_visible (GTK_WIDGET (self->channels_title), ready);
  gtk_widget_set_visible (GTK_WIDGET (self->channels_label), ready);
  gtk_widget_set_visible (GTK_WIDGET (self->rule_label), ready);
  if (!ready)
    {
      self->verdict = NULL;
      show_verdict (self);
      return;
    }
  show_point (self);
  for (int k = 0; k < PS_N_SETS; k++)
    show_row (self, k);
  show_verdict (self);
  show_channels (self);
}

void
ps_stats_panel_set_sweep (PsStatsPanel *self, const PsSweep *sweep)
{
  g_return_if_fail (PS_IS_STATS_PANEL (self));

  self->sweep = sweep;
  self->step = -1;
  refresh (self);
}

void
ps_stats_panel_set_point (PsStatsPanel *self, int step, const PsVerdict *verdict, gboolean stale)
{
  g_return_if_fail (PS_IS_STATS_PANEL (self));

  self->step = step;
  self->verdict = verdict;
  self->stale = stale;
  refresh (self);
}

void
ps_stats_panel_set_message (PsStatsPanel *self, const char *message)
{
  g_return_if_fail (PS_IS_STATS_PANEL (self));

  self->sweep = NULL;
  self->step = -1;
  refresh (self);
  gtk_label_set_text (self->point_label, message);
}

static void
ps_stats_panel_dispose (GObject *object)
{
  gtk_widget_dispose_template (GTK_WIDGET (object), PS_TYPE_STATS_PANEL);
  G_OBJECT_CLASS (ps_stats_panel_parent_class)->dispose (object);
}

#define BIND_ROW(set, name) \
  gtk_widget_class_bind_template_child_full (widget_class, name "_title", FALSE, \
    G_STRUCT_OFFSET (PsStatsPanel, rows) + set * sizeof (Row) + G_STRUCT_OFFSET (Row, title)); \
  gtk_widget_class_bind_template_child_full (widget_class, name "_b", FALSE, \
    G_STRUCT_OFFSET (PsStatsPanel, rows) + set * sizeof (Row) + G_STRUCT_OFFSET (Row, b)); \
  gtk_widget_class_bind_template_child_full (widget_class, name "_bp", FALSE, \
    G_STRUCT_OFFSET (PsStatsPanel, rows) + set * sizeof (Row) + G_STRUCT_OFFSET (Row, bp)); \
  gtk_widget_class_bind_template_child_full (widget_class, name "_g", FALSE, \
    G_STRUCT_OFFSET (PsStatsPanel, rows) + set * sizeof (Row) + G_STRUCT_OFFSET (Row, g)); \
  gtk_widget_class_bind_template_child_full (widget_class, name "_flag", FALSE, \
    G_STRUCT_OFFSET (PsStatsPanel, rows) + set * sizeof (Row) + G_STRUCT_OFFSET (Row, flag))

static void
ps_stats_panel_class_init (PsStatsPanelClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = ps_stats_panel_dispose;

  gtk_widget_class_set_template_from_resource (widget_class, "/org/prunescope/Prunescope/ps-stats-panel.ui");
  gtk_widget_class_set_layout_manager_type (widget_class, GTK_TYPE_BIN_LAYOUT);
  gtk_widget_class_set_css_name (widget_class, "psstatspanel");
  gtk_widget_class_bind_template_child (widget_class, PsStatsPanel, box);
  gtk_widget_class_bind_template_child (widget_class, PsStatsPanel, point_label);
  gtk_widget_class_bind_template_child (widget_class, PsStatsPanel, rule_label);
  gtk_widget_class_bind_template_child (widget_class, PsStatsPanel, grid);
  gtk_widget_class_bind_template_child (widget_class, PsStatsPanel, grid_caption);
  gtk_widget_class_bind_template_child (widget_class, PsStatsPanel, headline_label);
  gtk_widget_class_bind_template_child (widget_class, PsStatsPanel, verdict_label);
  gtk_widget_class_bind_template_child (widget_class, PsStatsPanel, notes_label);
  gtk_widget_class_bind_template_child (widget_class, PsStatsPanel, thresholds_label);
  gtk_widget_class_bind_template_child (widget_class, PsStatsPanel, stale_label);
  gtk_widget_class_bind_template_child (widget_class, PsStatsPanel, channels_title);
  gtk_widget_class_bind_template_child (widget_class, PsStatsPanel, channels_label);
  BIND_ROW (PS_SET_VALID, "valid");
  BIND_ROW (PS_SET_TEST, "test");
  BIND_ROW (PS_SET_POISONED, "asr");
}

static void
ps_stats_panel_init (PsStatsPanel *self)
{
  self->step = -1;
  gtk_widget_init_template (GTK_WIDGET (self));
  refresh (self);
}
