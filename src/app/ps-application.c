/* ps-application.c: one window per activation; without files a window opens the demo */
#define G_LOG_DOMAIN "prunescope"

#include "config.h"

#include <adwaita.h>
#include <glib/gi18n.h>

#include "ps-application.h"
#include "ps-window.h"

struct _PsApplication {
  GtkApplication parent_instance;
};

G_DEFINE_FINAL_TYPE (PsApplication, ps_application, GTK_TYPE_APPLICATION)

static PsWindow *
new_window (PsApplication *self)
{
  PsWindow *window = ps_window_new (GTK_APPLICATION (self));

  gtk_window_present (GTK_WINDOW (window));
  return window;
}

static void
ps_application_activate (GApplication *app)
{
  GtkWindow *window = gtk_application_get_active_window (GTK_APPLICATION (app));

  if (window != NULL)
    {
      gtk_window_present (window);
      return;
    }
  ps_window_open_demo (new_window (PS_APPLICATION (app)));
}

static void
ps_application_open (GApplication *app, GFile **files, int n_files, const char *hint)
{
  ps_window_open_files (new_window (PS_APPLICATION (app)), files, n_files);
}

static void
quit_action (GSimpleAction *action, GVariant *param, gpointer data)
{
  GApplication *app = data;
  GList *windows = gtk_application_get_windows (GTK_APPLICATION (app));

  g_autoptr (GList) copy = g_list_copy (windows);

  /* Closing each window cancels its sweep; the app ends when the threads have returned. */
  for (GList *l = copy; l != NULL; l = l->next)
    gtk_window_close (l->data);
}

static void
new_window_action (GSimpleAction *action, GVariant *param, gpointer data)
{
  new_window (PS_APPLICATION (data));
}

static void
about_action (GSimpleAction *action, GVariant *param, gpointer data)
{
  static const char *developers[] = { "The Prunescope developers", NULL };
  GtkWindow *parent = gtk_application_get_active_window (GTK_APPLICATION (data));
  GtkWidget *about = adw_about_window_new ();

  g_object_set (about,
                "transient-for", parent,
                "application-name", _("Prunescope"),
                "application-icon", APPLICATION_ID,
                "version", PACKAGE_VERSION,
                "comments", _("See whether pruning disarms a backdoored neural network, "
                              "and save the repaired network G."),
                "license-type", GTK_LICENSE_GPL_3_0,
                "developers", developers,
                "translator-credits", _("translator-credits"),
                NULL);
  gtk_window_present (GTK_WINDOW (about));
}

static const GActionEntry app_actions[] = {
  { .name = "quit", .activate = quit_action },
  { .name = "new-window", .activate = new_window_action },
  { .name = "about", .activate = about_action },
};

/* GtkApplication (unlike libadwaita) does not load style.css by itself. */
static void
load_style (void)
{
  g_autoptr (GtkCssProvider) css = gtk_css_provider_new ();

  gtk_css_provider_load_from_resource (css, "/org/prunescope/Prunescope/style.css");
  gtk_style_context_add_provider_for_display (gdk_display_get_default (), GTK_STYLE_PROVIDER (css),
                                              GTK_STYLE_PROVIDER_PRIORITY_APPLICATION);
}

static void
ps_application_startup (GApplication *app)
{
  static const struct { const char *action; const char *accels[3]; } accels[] = {
    { "app.quit", { "<Control>q", NULL } },
    { "app.new-window", { "<Control>n", NULL } },
    { "window.close", { "<Control>w", NULL } },
    { "win.show-help-overlay", { "<Control>question", NULL } },
  };

  G_APPLICATION_CLASS (ps_application_parent_class)->startup (app);
  /* Toasts, the adaptive layout and the about window; the style sheet follows libadwaita's. */
  adw_init ();

  g_action_map_add_action_entries (G_ACTION_MAP (app), app_actions, G_N_ELEMENTS (app_actions), app);
  for (guint i = 0; i < G_N_ELEMENTS (accels); i++)
    gtk_application_set_accels_for_action (GTK_APPLICATION (app), accels[i].action, accels[i].accels);
  gtk_window_set_default_icon_name (APPLICATION_ID);
  load_style ();
}

static void
ps_application_class_init (PsApplicationClass *klass)
{
  GApplicationClass *app_class = G_APPLICATION_CLASS (klass);

  app_class->activate = ps_application_activate;
  app_class->open = ps_application_open;
  app_class->startup = ps_application_startup;
}

static void
ps_application_init (PsApplication *self)
{
}

PsApplication *
ps_application_new (GApplicationFlags flags)
{
  return g_object_new (PS_TYPE_APPLICATION,
                       "application-id", APPLICATION_ID,
                       "flags", flags | G_APPLICATION_HANDLES_OPEN,
                       "resource-base-path", "/org/prunescope/Prunescope",
                       NULL);
}
