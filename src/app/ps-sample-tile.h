/* ps-sample-tile.h: one image of a set, scaled up crisply, with what B, B′ and G make of it */
#pragma once

#include <gtk/gtk.h>

#include "ps-dataset.h"

G_BEGIN_DECLS

#define PS_TYPE_SAMPLE_TILE (ps_sample_tile_get_type ())

G_DECLARE_FINAL_TYPE (PsSampleTile, ps_sample_tile, PS, SAMPLE_TILE, GtkWidget)

GtkWidget  *ps_sample_tile_new         (void);
/* Copies image @index of @ds for display; @poisoned: the label is the attack target, and
 * the set's clean labels (when it has them) are the true classes. */
void        ps_sample_tile_set_image   (PsSampleTile    *self,
                                        const PsDataset *ds,
                                        int              index,
                                        gboolean         poisoned);
/* Classes from the sweep; @g == @n_classes means G flags the input. */
void        ps_sample_tile_set_predictions (PsSampleTile *self,
                                            int           b,
                                            int           bp,
                                            int           g,
                                            int           n_classes);
/* The tile in words: which image, its classes, the three prediction lines (for tests and
 * accessibility). */
char       *ps_sample_tile_describe    (PsSampleTile    *self);
int         ps_sample_tile_get_index   (PsSampleTile    *self);

G_END_DECLS
