/*
 * src/cortex/netdb.c - NetDb: the tasks and memories models behind one
 * handle, and the NetDbSnapshot bundle.
 *
 * NetDbSnapshot (postcard):
 *   tasks:    Option<(Vec<u8>, Option<u64>)>   typed snapshot, last_seq
 *   memories: Option<(Vec<u8>, Option<u64>)>
 */
#include "cortex/cortex_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct nm_netdb {
    nm_redex *rx;
    bool own_rx;
    nm_cortex_tasks *tasks;
    nm_cortex_memories *memories;
    bool closed;
};

void
nm_netdb_config_init(nm_netdb_config *cfg)
{
    if (!cfg) {
        return;
    }
    memset(cfg, 0, sizeof(*cfg));
    cfg->size = sizeof(*cfg);
    cfg->on_error = NM_CORTEX_STOP;
}

static int
open_db(const nm_netdb_config *cfg, const nm_netdb_snapshot *snap,
        nm_netdb **out)
{
    if (!out) {
        return nmi_err(NM_EINVAL, "out must not be NULL");
    }
    *out = NULL;
    if (!cfg) {
        return nmi_err(NM_EINVAL, "config must not be NULL");
    }
    if (cfg->size != sizeof(*cfg)) {
        return nmi_err(NM_EINVAL,
                       "nm_netdb_config.size is %u, expected %zu (call "
                       "nm_netdb_config_init)",
                       cfg->size, sizeof(*cfg));
    }
    if (!cfg->with_tasks && !cfg->with_memories) {
        return nmi_err(NM_EINVAL, "no models enabled: set with_tasks and/or "
                                  "with_memories");
    }
    if (cfg->persistent && !cfg->redex && !cfg->dir) {
        return nmi_err(NM_EINVAL, "persistent needs a directory (dir) or a "
                                  "redex manager opened on one");
    }
    if (cfg->redex && cfg->dir) {
        return nmi_err(NM_EINVAL, "give either redex or dir, not both");
    }
    if (snap && ((snap->has_tasks && !cfg->with_tasks) ||
                 (snap->has_memories && !cfg->with_memories))) {
        return nmi_err(NM_EINVAL,
                       "the snapshot holds %s, which the config "
                       "does not enable",
                       snap->has_tasks && !cfg->with_tasks ? "tasks"
                                                           : "memories");
    }
    nm_netdb *db = calloc(1, sizeof(*db));
    if (!db) {
        return nmi_err(NM_ENOMEM, "netdb");
    }
    int rc = NM_OK;
    if (cfg->redex) {
        db->rx = cfg->redex;
    } else {
        nm_redex_config rc_;
        nm_redex_config_init(&rc_);
        rc_.dir = cfg->dir;
        rc = nm_redex_open(&rc_, &db->rx);
        if (rc) {
            free(db);
            return rc;
        }
        db->own_rx = true;
    }
    nm_redex_file_config fc;
    if (cfg->file) {
        fc = *cfg->file;
    } else {
        nm_redex_file_config_init(&fc);
    }
    fc.persistent = cfg->persistent;
    nm_cortex_config cc;
    nm_cortex_config_init(&cc);
    cc.origin_hash = cfg->origin_hash;
    cc.file = &fc;
    cc.on_error = cfg->on_error;
    if (cfg->with_tasks) {
        rc = snap && snap->has_tasks
                 ? nm_cortex_tasks_open_from_snapshot(db->rx, &cc,
                                                      &snap->tasks, &db->tasks)
                 : nm_cortex_tasks_open(db->rx, &cc, &db->tasks);
    }
    if (!rc && cfg->with_memories) {
        rc = snap && snap->has_memories
                 ? nm_cortex_memories_open_from_snapshot(
                       db->rx, &cc, &snap->memories, &db->memories)
                 : nm_cortex_memories_open(db->rx, &cc, &db->memories);
    }
    if (rc) {
        char why[240];
        snprintf(why, sizeof(why), "%s", nm_errdetail());
        nm_netdb_free(db);
        return nmi_err(rc, "%s", why);
    }
    *out = db;
    return NM_OK;
}

int
nm_netdb_open(const nm_netdb_config *cfg, nm_netdb **out)
{
    return open_db(cfg, NULL, out);
}

int
nm_netdb_open_from_snapshot(const nm_netdb_config *cfg,
                            const nm_netdb_snapshot *s, nm_netdb **out)
{
    if (!s) {
        return nmi_err(NM_EINVAL, "snapshot must not be NULL");
    }
    return open_db(cfg, s, out);
}

nm_cortex_tasks *
nm_netdb_tasks(nm_netdb *db)
{
    return db ? db->tasks : NULL;
}

nm_cortex_memories *
nm_netdb_memories(nm_netdb *db)
{
    return db ? db->memories : NULL;
}

void
nm_netdb_close(nm_netdb *db)
{
    if (!db || db->closed) {
        return;
    }
    db->closed = true;
    nm_cortex_tasks_close(db->tasks);
    nm_cortex_memories_close(db->memories);
}

void
nm_netdb_free(nm_netdb *db)
{
    if (!db) {
        return;
    }
    nm_netdb_close(db);
    nm_cortex_tasks_free(db->tasks);
    nm_cortex_memories_free(db->memories);
    if (db->own_rx) {
        nm_redex_close(db->rx);
    }
    free(db);
}

/* ----------------------------------------------------------- snapshots */

int
nm_netdb_snapshot_take(nm_netdb *db, nm_netdb_snapshot *out)
{
    if (!db || !out) {
        return nmi_err(NM_EINVAL, "db and out must not be NULL");
    }
    memset(out, 0, sizeof(*out));
    int rc = NM_OK;
    if (db->tasks) {
        rc = nm_cortex_tasks_snapshot(db->tasks, &out->tasks);
        out->has_tasks = rc == NM_OK;
    }
    if (!rc && db->memories) {
        rc = nm_cortex_memories_snapshot(db->memories, &out->memories);
        out->has_memories = rc == NM_OK;
    }
    if (rc) {
        nm_netdb_snapshot_free(out);
    }
    return rc;
}

void
nm_netdb_snapshot_free(nm_netdb_snapshot *s)
{
    if (!s) {
        return;
    }
    nm_cortex_snapshot_free(&s->tasks);
    nm_cortex_snapshot_free(&s->memories);
    s->has_tasks = s->has_memories = false;
}

static void
put_part(nmi_pc_w *w, bool has, const nm_cortex_snapshot *p)
{
    nmi_pc_put_bool(w, has); /* Option tag */
    if (!has) {
        return;
    }
    nmi_pc_put_bytes(w, p->state, p->len);
    nmi_pc_put_bool(w, p->has_last_seq);
    if (p->has_last_seq) {
        nmi_pc_put_varint(w, p->last_seq);
    }
}

int
nm_netdb_snapshot_encode(const nm_netdb_snapshot *s, uint8_t **out,
                         size_t *len)
{
    if (!s || !out || !len) {
        return nmi_err(NM_EINVAL, "s, out and len must not be NULL");
    }
    if ((s->has_tasks && !s->tasks.state && s->tasks.len) ||
        (s->has_memories && !s->memories.state && s->memories.len)) {
        return nmi_err(NM_EINVAL, "snapshot part with NULL state bytes");
    }
    nmi_pc_w w;
    nmi_pc_w_init(&w, NULL, 0);
    put_part(&w, s->has_tasks, &s->tasks);
    put_part(&w, s->has_memories, &s->memories);
    return nmi_pc_w_take(&w, out, len);
}

static int
get_part(nmi_pc_r *r, const nmi_cx_kind *kind, bool *has,
         nm_cortex_snapshot *p)
{
    char what[48];
    snprintf(what, sizeof(what), "netdb snapshot %s", kind->name);
    int rc = nmi_pc_get_option(r, has, what);
    if (rc || !*has) {
        return rc;
    }
    const uint8_t *b;
    size_t n;
    if ((rc = nmi_pc_get_bytes(r, &b, &n, what)) ||
        (rc = nmi_pc_get_option(r, &p->has_last_seq, what))) {
        return rc;
    }
    if (p->has_last_seq &&
        (rc = nmi_pc_get_u64(r, &p->last_seq, what)) != NM_OK) {
        return rc;
    }
    if (p->has_last_seq && p->last_seq == UINT64_MAX) {
        return nmi_err(NM_EDECODE, "%s: last_seq is u64::MAX", what);
    }
    /* The part must be a well-formed snapshot of its model. */
    uint64_t app_seq;
    rc = nmi_cx_snapshot_decode(kind, b, n, &app_seq, NULL);
    if (rc) {
        return rc;
    }
    p->state = malloc(n ? n : 1);
    if (!p->state) {
        return nmi_err(NM_ENOMEM, "%s", what);
    }
    if (n) {
        memcpy(p->state, b, n);
    }
    p->len = n;
    return NM_OK;
}

int
nm_netdb_snapshot_decode(const uint8_t *buf, size_t len,
                         nm_netdb_snapshot *out)
{
    if (!out || (!buf && len)) {
        return nmi_err(NM_EINVAL, "buf and out must not be NULL");
    }
    memset(out, 0, sizeof(*out));
    nmi_pc_r r;
    nmi_pc_r_init(&r, buf, len);
    int rc = get_part(&r, &nmi_cx_tasks_kind, &out->has_tasks, &out->tasks);
    if (!rc) {
        rc = get_part(&r, &nmi_cx_memories_kind, &out->has_memories,
                      &out->memories);
    }
    if (rc) {
        /* parts are owned only once fully decoded */
        if (!out->tasks.state) {
            out->has_tasks = false;
        }
        if (!out->memories.state) {
            out->has_memories = false;
        }
        nm_netdb_snapshot_free(out);
    }
    return rc;
}
