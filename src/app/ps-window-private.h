/* ps-window-private.h: what ps-window.c and ps-window-actions.c share */
#pragma once

#include <adwaita.h>

#include "ps-channel-view.h"
#include "ps-chart.h"
#include "ps-gallery.h"
#include "ps-stats-panel.h"
#include "ps-window.h"

G_BEGIN_DECLS

struct _PsWindow {
  GtkApplicationWindow  parent_instance;

  PsSession            *session;
  GSettings            *settings;        /* NULL when the schema is not installed */
  const PsSweep        *shown_sweep;     /* what the panels borrow from the session */
  int                   step;
  double                drop;
  gboolean              updating;        /* set while the code moves the slider or dropdown */
  gulong                session_handlers[4];

  PsVerdict            *verdict;         /* at the chosen step */
  GFile                *last_folder;     /* where the file choosers open */
  char                 *last_notice;     /* the last transient notice, for tests */
  guint                 fold_idle;
  char                **recent;          /* recent files when GSettings has no schema */

  /* template */
  AdwToastOverlay      *toast_overlay;
  GtkWidget            *save_button;
  GtkInfoBar           *error_bar;
  GtkLabel             *error_label;
  GtkExpander          *error_expander;
  GtkLabel             *error_detail_label;
  GtkLabel             *model_label;
  GtkLabel             *valid_label;
  GtkLabel             *test_label;
  GtkLabel             *poisoned_label;
  GtkDropDown          *scale_dropdown;
  GtkDropDown          *layer_dropdown;
  GtkStringList        *layer_list;      /* the dropdown's items: name, shape, default */
  char                **layer_names;     /* the layer of each item */
  GtkRevealer          *progress_revealer;
  GtkLabel             *activity_label;
  GtkProgressBar       *progress_bar;
  GtkStack             *main_stack;
  AdwFlap              *flap;            /* the numbers beside the chart, or over it when narrow */
  GtkLabel             *verdict_bar;     /* the verdict above the chart, always in view */
  PsChart              *chart;
  GtkScale             *drop_scale;
  GtkAdjustment        *drop_adjustment;
  PsGallery            *gallery;
  PsChannelView        *channel_view;
  PsStatsPanel         *stats_panel;
  GMenu                *recent_menu;
  GtkWidget            *demo_button;
};

void  _ps_window_class_actions_init (GtkWidgetClass *widget_class);
void  _ps_window_update_actions     (PsWindow       *self);
void  _ps_window_remember           (PsWindow       *self,
                                     GFile          *file);
void  _ps_window_update_recent      (PsWindow       *self);
/* @file with the extension @ext (".svg") of the format chosen in the export dialog. */
GFile *_ps_window_plot_file         (GFile          *file,
                                     const char     *ext);
/* The Open Model dialog's filters, the first showing every model it reads. */
void  _ps_window_add_model_filters  (GtkFileChooser *chooser);
/* A transient notice for a success (G saved, plot exported). */
void  _ps_window_notify             (PsWindow       *self,
                                     const char     *text);

G_END_DECLS
