/* ps-gallery.h: clean and poisoned sample images with predictions at the chosen step */
#pragma once

#include <gtk/gtk.h>

#include "ps-sample-tile.h"
#include "ps-sweep.h"

G_BEGIN_DECLS

#define PS_TYPE_GALLERY (ps_gallery_get_type ())

#define PS_GALLERY_SAMPLES 8

G_DECLARE_FINAL_TYPE (PsGallery, ps_gallery, PS, GALLERY, GtkWidget)

/* @sweep and @sets (indexed by PsSetKind) are borrowed; set NULL before freeing them. */
void  ps_gallery_set_sweep (PsGallery              *self,
                            const PsSweep          *sweep,
                            const PsDataset * const sets[PS_N_SETS]);
void  ps_gallery_set_step  (PsGallery              *self,
                            int                     step);
/* Tile @i of the clean or the poisoned row, NULL when not shown. */
PsSampleTile *ps_gallery_get_tile (PsGallery *self,
                                   gboolean   poisoned,
                                   int        i);

G_END_DECLS
