/* ps-onnx-save.c: G (or B' alone) written as one ONNX graph, made from B's own graph.
 * B' is B with the pruned tensor multiplied by a constant 0/1 mask; G keeps everything
 * below the pruned tensor once, runs the nodes above it twice (B's and B''s heads), and
 * returns ArgMax of B where both heads agree, else n_classes. The metadata_props record
 * what the HDF5 G records, so that the file is read back as G. */
#define G_LOG_DOMAIN "ps-onnx"

#include "ps-onnx.h"
#include "ps-error.h"
#include "onnx.pb-c.h"

#include <math.h>
#include <string.h>

#define PRUNED_PREFIX "prunescope/pruned/"

typedef struct {
  GPtrArray *garbage;   /* everything allocated here, freed at the end */
  GPtrArray *nodes;
  GPtrArray *inits;
  GPtrArray *meta;
} Writer;

static gpointer
keep (Writer *w, gpointer p)
{
  g_ptr_array_add (w->garbage, p);
  return p;
}

static char *
str (Writer *w, const char *a, const char *b)
{
  return keep (w, g_strconcat (a, b, NULL));
}

static char *
pruned_name (Writer *w, const char *name)
{
  return str (w, PRUNED_PREFIX, name);
}

static Onnx__NodeProto *
new_node (Writer *w, const char *op, const char *name, int n_in, int n_out)
{
  Onnx__NodeProto *n = keep (w, g_new0 (Onnx__NodeProto, 1));

  onnx__node_proto__init (n);
  n->op_type = (char *) op;
  n->name = (char *) name;
  n->n_input = n_in;
  n->input = keep (w, g_new0 (char *, MAX (n_in, 1)));
  n->n_output = n_out;
  n->output = keep (w, g_new0 (char *, MAX (n_out, 1)));
  g_ptr_array_add (w->nodes, n);
  return n;
}

static void
add_int_attr (Writer *w, Onnx__NodeProto *n, const char *name, gint64 value)
{
  Onnx__AttributeProto *a = keep (w, g_new0 (Onnx__AttributeProto, 1));
  Onnx__AttributeProto **list = keep (w, g_new0 (Onnx__AttributeProto *, n->n_attribute + 1));

  onnx__attribute_proto__init (a);
  a->name = (char *) name;
  a->has_type = TRUE;
  a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
  a->has_i = TRUE;
  a->i = value;
  if (n->n_attribute > 0)
    memcpy (list, n->attribute, sizeof (gpointer) * n->n_attribute);
  list[n->n_attribute++] = a;
  n->attribute = list;
}

static void
add_meta (Writer *w, const char *key, char *value)
{
  Onnx__StringStringEntryProto *e = keep (w, g_new0 (Onnx__StringStringEntryProto, 1));

  onnx__string_string_entry_proto__init (e);
  e->key = (char *) key;
  e->value = keep (w, value);
  g_ptr_array_add (w->meta, e);
}

static char *
number (double v)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];

  if (isnan (v))
    return g_strdup ("");
  return g_strdup (g_ascii_dtostr (buf, sizeof buf, v));
}

/* The 0/1 mask, shaped to broadcast over the pruned tensor's channels. */
static void
add_mask (Writer *w, const PsLayer *l, const PsOnnxPruning *p, const char *name)
{
  Onnx__TensorProto *t = keep (w, g_new0 (Onnx__TensorProto, 1));
  float *v = keep (w, g_new (float, l->out.c));
  gint64 *dims = keep (w, g_new0 (gint64, 4));

  for (int c = 0; c < l->out.c; c++)
    v[c] = 1.0f;
  for (int i = 0; i < p->n_pruned; i++)
    v[p->channels[i]] = 0.0f;
  onnx__tensor_proto__init (t);
  t->name = (char *) name;
  t->has_data_type = TRUE;
  t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
  dims[0] = 1, dims[1] = l->out.c, dims[2] = dims[3] = 1;
  t->dims = dims;
  t->n_dims = l->rank == 4 ? 4 : 2;
  t->float_data = v;
  t->n_float_data = l->out.c;
  g_ptr_array_add (w->inits, t);
}

/* The nodes that depend on @tensor, transitively; @tainted receives their outputs. */
static gboolean *
downstream (const Onnx__GraphProto *g, const char *tensor, GHashTable *tainted)
{
  gboolean *down = g_new0 (gboolean, MAX (g->n_node, 1));
  gboolean changed = TRUE;

  g_hash_table_add (tainted, (gpointer) tensor);
  /* nodes are sorted, so one pass normally suffices; repeat until nothing changes */
  for (gsize pass = 0; changed && pass <= g->n_node; pass++)
    {
      changed = FALSE;
      for (gsize i = 0; i < g->n_node; i++)
        for (gsize j = 0; !down[i] && j < g->node[i]->n_input; j++)
          if (g_hash_table_contains (tainted, g->node[i]->input[j]))
            {
              down[i] = changed = TRUE;
              for (gsize k = 0; k < g->node[i]->n_output; k++)
                g_hash_table_add (tainted, g->node[i]->output[k]);
            }
    }
  return down;
}

/* A copy of @src whose inputs in @rename (tainted) are read from their pruned twins, and
 * whose outputs are pruned twins too when @twin. */
static void
copy_node (Writer *w, const Onnx__NodeProto *src, GHashTable *rename, gboolean twin)
{
  Onnx__NodeProto *n = new_node (w, src->op_type, twin ? pruned_name (w, src->name ? src->name : "")
                                                       : src->name, src->n_input, src->n_output);

  n->domain = src->domain;
  n->doc_string = src->doc_string;
  n->n_attribute = src->n_attribute;
  n->attribute = src->attribute;
  for (gsize j = 0; j < src->n_input; j++)
    n->input[j] = g_hash_table_contains (rename, src->input[j]) ? pruned_name (w, src->input[j])
                                                                 : src->input[j];
  for (gsize j = 0; j < src->n_output; j++)
    n->output[j] = twin && src->output[j][0] ? pruned_name (w, src->output[j]) : src->output[j];
}

/* An output of @type, (N) or with @cols, (N, cols), N as the input declares it. */
static Onnx__ValueInfoProto *
batch_output (Writer *w, const Onnx__ValueInfoProto *input, const char *name, int elem, int cols)
{
  Onnx__ValueInfoProto *vi = keep (w, g_new0 (Onnx__ValueInfoProto, 1));
  Onnx__TypeProto *type = keep (w, g_new0 (Onnx__TypeProto, 1));
  Onnx__TypeProto__Tensor *tt = keep (w, g_new0 (Onnx__TypeProto__Tensor, 1));
  Onnx__TensorShapeProto *shape = keep (w, g_new0 (Onnx__TensorShapeProto, 1));
  Onnx__TensorShapeProto__Dimension **dims = keep (w, g_new0 (Onnx__TensorShapeProto__Dimension *, 2));
  Onnx__TensorShapeProto__Dimension *col = keep (w, g_new0 (Onnx__TensorShapeProto__Dimension, 1));

  onnx__value_info_proto__init (vi);
  onnx__type_proto__init (type);
  onnx__type_proto__tensor__init (tt);
  onnx__tensor_shape_proto__init (shape);
  tt->has_elem_type = TRUE;
  tt->elem_type = elem;
  /* the batch dimension of the input, as it was declared */
  dims[0] = input->type->tensor_type->shape->dim[0];
  shape->n_dim = 1;
  if (cols > 0)
    {
      onnx__tensor_shape_proto__dimension__init (col);
      col->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
      col->dim_value = cols;
      dims[1] = col;
      shape->n_dim = 2;
    }
  shape->dim = dims;
  tt->shape = shape;
  type->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
  type->tensor_type = tt;
  vi->name = (char *) name;
  vi->type = type;
  return vi;
}

/* ArgMax of both heads, Equal, Where -> G's class. */
static void
add_g_head (Writer *w, const char *b_logits, const char *bp_logits, int n_classes)
{
  Onnx__NodeProto *n;
  Onnx__TensorProto *k = keep (w, g_new0 (Onnx__TensorProto, 1));
  gint64 *v = keep (w, g_new (gint64, 1));

  n = new_node (w, "ArgMax", "prunescope/b_class", 1, 1);
  n->input[0] = (char *) b_logits, n->output[0] = "prunescope/b_class";
  add_int_attr (w, n, "axis", 1);
  add_int_attr (w, n, "keepdims", 0);
  n = new_node (w, "ArgMax", "prunescope/b_prime_class", 1, 1);
  n->input[0] = (char *) bp_logits, n->output[0] = "prunescope/b_prime_class";
  add_int_attr (w, n, "axis", 1);
  add_int_attr (w, n, "keepdims", 0);
  n = new_node (w, "Equal", "prunescope/agree", 2, 1);
  n->input[0] = "prunescope/b_class", n->input[1] = "prunescope/b_prime_class";
  n->output[0] = "prunescope/agree";
  n = new_node (w, "Where", "prunescope/g_class", 3, 1);
  n->input[0] = "prunescope/agree", n->input[1] = "prunescope/b_class";
  n->input[2] = "prunescope/backdoored";
  n->output[0] = "g_class";

  onnx__tensor_proto__init (k);
  k->name = "prunescope/backdoored";
  k->has_data_type = TRUE;
  k->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
  v[0] = n_classes;
  k->int64_data = v;
  k->n_int64_data = 1;
  g_ptr_array_add (w->inits, k);
}

static void
add_pruning_meta (Writer *w, const PsModel *m, const PsOnnxPruning *p, gboolean b_prime_only,
                  const char *b_logits, const char *bp_logits)
{
  GString *ch = g_string_new (NULL);
  static const char *keys[9] = {
    "prunescope.metrics.valid_acc", "prunescope.metrics.test_acc", "prunescope.metrics.asr",
    "prunescope.metrics.g_test_acc", "prunescope.metrics.g_asr",
    "prunescope.metrics.g_clean_flagged", "prunescope.metrics.g_poisoned_flagged",
    "prunescope.metrics.fraction", "prunescope.metrics.pruned",
  };

  for (int i = 0; i < p->n_pruned; i++)
    g_string_append_printf (ch, "%s%d", i ? "," : "", p->channels[i]);
  add_meta (w, "prunescope.kind", g_strdup (b_prime_only ? "B'" : "G"));
  add_meta (w, "prunescope.layer", g_strdup (p->layer));
  add_meta (w, "prunescope.channels", g_string_free (ch, FALSE));
  add_meta (w, "prunescope.drop", number (p->drop));
  add_meta (w, "prunescope.input_scale", number (m->input_scale));
  add_meta (w, "prunescope.n_classes", g_strdup_printf ("%d", m->n_classes));
  add_meta (w, "prunescope.b_logits", g_strdup (b_logits));
  add_meta (w, "prunescope.b_prime_logits", g_strdup (bp_logits));
  if (p->metrics != NULL)
    {
      const PsSweepStep *r = p->metrics;
      double v[9] = { r->valid_acc, r->test_acc, r->asr, r->g_test_acc, r->g_asr,
                      r->g_clean_flagged, r->g_poisoned_flagged, r->fraction, r->pruned };
      for (int i = 0; i < 9; i++)
        add_meta (w, keys[i], number (v[i]));
    }
}

static const char *
old_meta (const Onnx__ModelProto *p, const char *key)
{
  for (gsize i = 0; i < p->n_metadata_props; i++)
    if (g_strcmp0 (p->metadata_props[i]->key, key) == 0)
      return p->metadata_props[i]->value;
  return NULL;
}

static gboolean
check_args (const PsModel *m, const PsOnnxPruning *p, const Onnx__ModelProto *proto,
            const PsLayer **layer, GError **error)
{
  int i = ps_model_find_layer (m, p->layer);

  if (i < 0 || i == m->input || !g_str_equal (m->layers[i]->name, p->layer))
    {
      g_set_error (error, PS_ERROR, PS_ERROR_MISMATCH, "the model has no tensor “%s” to prune", p->layer);
      return FALSE;
    }
  *layer = m->layers[i];
  for (int k = 0; k < p->n_pruned; k++)
    if (p->channels[k] < 0 || p->channels[k] >= (*layer)->out.c)
      {
        g_set_error (error, PS_ERROR, PS_ERROR_MISMATCH, "channel %d is not one of the %d of “%s”",
                     p->channels[k], (*layer)->out.c, p->layer);
        return FALSE;
      }
  return TRUE;
}

static gboolean
is_ours (const char *name)
{
  return g_str_has_prefix (name, "prunescope/") || g_str_equal (name, "g_class");
}

/* A G or a B' written here holds B's graph: take it back (without the mask, the second head
 * and the pruning's metadata), so that the defense is re-run on B. */
static void
recover_b (Writer *w, const Onnx__ModelProto *proto, const PsModel *m,
           Onnx__ModelProto *src, Onnx__GraphProto *sg)
{
  const Onnx__GraphProto *g = proto->graph;
  const char *b_logits = old_meta (proto, "prunescope.b_logits");
  gboolean was_g = g_strcmp0 (old_meta (proto, "prunescope.kind"), "G") == 0;
  gsize n = 0;

  sg->node = keep (w, g_new0 (Onnx__NodeProto *, MAX (g->n_node, 1)));
  for (gsize i = 0; i < g->n_node; i++)
    {
      Onnx__NodeProto *node = g->node[i];
      gboolean ours = FALSE, renamed = FALSE;

      for (gsize j = 0; j < node->n_output; j++)
        ours |= is_ours (node->output[j]);
      for (gsize j = 0; j < node->n_input; j++)
        renamed |= g_str_has_prefix (node->input[j], PRUNED_PREFIX);
      if (ours)
        continue;
      if (renamed)
        {
          node = keep (w, g_memdup2 (node, sizeof *node));
          node->input = keep (w, g_memdup2 (node->input, sizeof (char *) * MAX (node->n_input, 1)));
          for (gsize j = 0; j < node->n_input; j++)
            if (g_str_has_prefix (node->input[j], PRUNED_PREFIX))
              node->input[j] += strlen (PRUNED_PREFIX);
        }
      sg->node[n++] = node;
    }
  sg->n_node = n;
  sg->initializer = keep (w, g_new0 (Onnx__TensorProto *, MAX (g->n_initializer, 1)));
  for (gsize i = n = 0; i < g->n_initializer; i++)
    if (!g_str_has_prefix (g->initializer[i]->name ? g->initializer[i]->name : "", "prunescope/"))
      sg->initializer[n++] = g->initializer[i];
  sg->n_initializer = n;
  src->metadata_props = keep (w, g_new0 (Onnx__StringStringEntryProto *, MAX (proto->n_metadata_props, 1)));
  for (gsize i = n = 0; i < proto->n_metadata_props; i++)
    if (!g_str_has_prefix (proto->metadata_props[i]->key ? proto->metadata_props[i]->key : "", "prunescope."))
      src->metadata_props[n++] = proto->metadata_props[i];
  src->n_metadata_props = n;
  if (was_g && b_logits != NULL)
    for (gsize i = 0; i < g->n_input; i++)
      if (g_str_equal (g->input[i]->name, m->layers[m->input]->name))
        {
          sg->n_output = 1;
          sg->output = keep (w, g_new0 (Onnx__ValueInfoProto *, 1));
          sg->output[0] = batch_output (w, g->input[i], b_logits, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT,
                                        m->n_classes);
        }
}

static gboolean
write_model (Writer *w, const Onnx__ModelProto *proto, const PsModel *m, const PsOnnxPruning *p,
             const PsLayer *layer, gboolean b_prime_only, const char *path, GError **error)
{
  const Onnx__GraphProto *g = proto->graph;
  g_autoptr (GHashTable) tainted = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (GHashTable) direct = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (GHashTable) empty = g_hash_table_new (g_str_hash, g_str_equal);
  g_autofree gboolean *down = downstream (g, p->layer, tainted);
  Onnx__ModelProto out = *proto;
  Onnx__GraphProto graph = *g;
  const char *b_logits = g->output[0]->name;
  char *bp_logits = b_prime_only ? (char *) b_logits : pruned_name (w, b_logits);
  char *mask = str (w, "prunescope/mask/", p->layer);
  Onnx__NodeProto *mul;
  const Onnx__ValueInfoProto *input = NULL;
  g_autofree guint8 *buf = NULL;
  gsize size;

  g_hash_table_add (direct, (gpointer) p->layer);
  for (gsize i = 0; i < g->n_input; i++)
    if (g_str_equal (g->input[i]->name, m->layers[m->input]->name))
      input = g->input[i];
  if (input == NULL || input->type == NULL
      || input->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE
      || input->type->tensor_type->shape == NULL || input->type->tensor_type->shape->n_dim < 1)
    {
      g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "%s: the model's ONNX input is not usable", path);
      return FALSE;
    }
  for (gsize i = 0; i < g->n_initializer; i++)
    g_ptr_array_add (w->inits, g->initializer[i]);
  for (gsize i = 0; i < proto->n_metadata_props; i++)
    g_ptr_array_add (w->meta, proto->metadata_props[i]);
  add_mask (w, layer, p, mask);

  /* B (or, alone, B' reading the masked tensor where it read the pruned one); the mask
   * right after the pruned tensor's producer, to keep the nodes sorted */
  for (gsize i = 0; i < g->n_node; i++)
    {
      copy_node (w, g->node[i], b_prime_only ? direct : empty, FALSE);
      for (gsize j = 0; j < g->node[i]->n_output; j++)
        if (g_str_equal (g->node[i]->output[j], p->layer))
          {
            mul = new_node (w, "Mul", str (w, "prunescope/mask_node/", p->layer), 2, 1);
            mul->input[0] = (char *) p->layer, mul->input[1] = mask;
            mul->output[0] = pruned_name (w, p->layer);
          }
    }
  if (!b_prime_only)
    {
      /* B''s head: the nodes above the pruned tensor once more, on the masked tensor */
      for (gsize i = 0; i < g->n_node; i++)
        if (down[i])
          copy_node (w, g->node[i], tainted, TRUE);
      add_g_head (w, b_logits, bp_logits, m->n_classes);
      graph.n_output = 1;
      graph.output = keep (w, g_new0 (Onnx__ValueInfoProto *, 1));
      graph.output[0] = batch_output (w, input, "g_class", ONNX__TENSOR_PROTO__DATA_TYPE__INT64, 0);
    }
  add_pruning_meta (w, m, p, b_prime_only, b_logits, bp_logits);

  graph.n_node = w->nodes->len;
  graph.node = (Onnx__NodeProto **) w->nodes->pdata;
  graph.n_initializer = w->inits->len;
  graph.initializer = (Onnx__TensorProto **) w->inits->pdata;
  graph.n_value_info = 0; /* shapes inferred from B no longer cover every tensor */
  out.graph = &graph;
  out.n_metadata_props = w->meta->len;
  out.metadata_props = (Onnx__StringStringEntryProto **) w->meta->pdata;

  size = onnx__model_proto__get_packed_size (&out);
  buf = g_malloc (MAX (size, 1));
  onnx__model_proto__pack (&out, buf);
  if (!g_file_set_contents (path, (const char *) buf, size, error))
    {
      g_prefix_error (error, "%s: ", path);
      return FALSE;
    }
  return TRUE;
}

gboolean
ps_onnx_save_g (const PsModel *model, const PsOnnxPruning *pruning, gboolean b_prime_only,
                const char *path, GError **error)
{
  Onnx__ModelProto *proto;
  const PsLayer *layer = NULL;
  Writer w;
  gboolean ok;

  if (model->onnx == NULL)
    {
      g_set_error (error, PS_ERROR, PS_ERROR_UNSUPPORTED,
                   "%s: only a model read from ONNX is written as ONNX", path);
      return FALSE;
    }
  proto = onnx__model_proto__unpack (NULL, g_bytes_get_size (model->onnx),
                                     g_bytes_get_data (model->onnx, NULL));
  if (proto == NULL || proto->graph == NULL || proto->graph->n_output < 1)
    {
      if (proto != NULL)
        onnx__model_proto__free_unpacked (proto, NULL);
      g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "%s: the model's ONNX graph is not usable", path);
      return FALSE;
    }
  if (!check_args (model, pruning, proto, &layer, error))
    {
      onnx__model_proto__free_unpacked (proto, NULL);
      g_prefix_error (error, "%s: ", path);
      return FALSE;
    }
  w.garbage = g_ptr_array_new_with_free_func (g_free);
  w.nodes = g_ptr_array_new ();
  w.inits = g_ptr_array_new ();
  w.meta = g_ptr_array_new ();
  {
    Onnx__ModelProto src = *proto;
    Onnx__GraphProto sg = *proto->graph;

    if (g_strcmp0 (old_meta (proto, "prunescope.kind"), "G") == 0)
      recover_b (&w, proto, model, &src, &sg);
    else if (old_meta (proto, "prunescope.kind") != NULL)
      {
        g_set_error (error, PS_ERROR, PS_ERROR_UNSUPPORTED,
                     "%s: the model is a pruned network B' alone; prune the original BadNet", path);
        ok = FALSE;
        goto out;
      }
    src.graph = &sg;
    ok = write_model (&w, &src, model, pruning, layer, b_prime_only, path, error);
  }
out:
  g_ptr_array_unref (w.nodes);
  g_ptr_array_unref (w.inits);
  g_ptr_array_unref (w.meta);
  g_ptr_array_unref (w.garbage);
  onnx__model_proto__free_unpacked (proto, NULL);
  return ok;
}
