/*
 * secretscan: refuses to publish an artifact that contains the value of one
 * of the build's secrets, plain or in an encoding a bundler might use.
 *
 * A frontend build that passes all of process.env into a bundle ships the
 * build's tokens to every visitor; this scan runs over every artifact file
 * before the first upload and fails the run with a message that names the
 * file and the secret's NAME, never its value:
 *   artifact assets/app.3f2a.js contains the value of secret API_TOKEN
 *   (JSON-escaped): refusing to deploy; if this is intended, list API_TOKEN
 *   under build.secrets-allowed-in-artifacts
 *
 * Needles: for each secret value (at least PIER_SECRETSCAN_MIN_LEN bytes)
 *   plain;
 *   JSON-escaped (\" \\ and control characters; also with \/; also with
 *   <>&'= and non-ASCII as \u00XX/\uXXXX, as Go, Python's ensure_ascii and
 *   serialize-javascript write them);
 *   base64, standard and URL-safe, at the three byte alignments (a secret
 *   inside a larger base64 text shows as one of three shifted encodings,
 *   minus the edge characters that also depend on its neighbours);
 *   URL-encoded (RFC 3986 strict and encodeURIComponent's set; %XX upper
 *   and lower hex; space as %20 or '+');
 *   hex, lower and upper case.
 * Variants equal to one already listed are dropped.
 *
 * Search: one Aho-Corasick automaton over every needle; each file is read
 * once, in 64 KiB chunks, with the automaton's state carried across chunk
 * boundaries (so no overlap is needed and a match split between two reads
 * is found). Cost: O(total needle bytes) to build, O(file bytes) to scan.
 *
 * Opt-out: a secret marked allowed is not scanned; it is never silent: the
 * warn callback (or the log, when NULL) gets a line naming it. Secrets
 * shorter than PIER_SECRETSCAN_MIN_LEN are skipped with a warning too
 * (they would match everywhere).
 *
 * Ownership: the scanner copies what it needs from the secrets; a scanner
 * is read-only after creation, so several threads may scan with one.
 */
#ifndef PIER_SECRETSCAN_H
#define PIER_SECRETSCAN_H

#include <stdbool.h>
#include <stddef.h>

#define PIER_SECRETSCAN_MIN_LEN 4 /* shorter values are not scanned (warned) */

typedef struct {
    const char *name;  /* the secret's name (the only thing ever reported) */
    const char *value; /* its value */
    bool allowed;      /* listed under build.secrets-allowed-in-artifacts: not scanned */
} pier_secretscan_secret;

/* Receives one warning line (no value in it); the engine writes it to the
 * run log. */
typedef void (*pier_secretscan_warn_fn)(void *ctx, const char *message);

typedef struct pier_secretscan pier_secretscan;

/* What a scan found (all borrowed from the scanner, except file). */
typedef struct {
    const char *secret;   /* the secret's name */
    const char *encoding; /* "plain", "JSON-escaped", "base64", "base64url", "URL-encoded", "hex" */
    char *file;           /* the file, relative to the scanned root (owned; free()) */
    unsigned long long offset; /* byte offset of the match's end in the file */
} pier_secretscan_hit;

/* Builds the automaton for secrets (warnings go to warn, or the log when
 * warn is NULL). Always succeeds; a scanner with no needles finds nothing. */
void pier_secretscan_new(pier_secretscan **out, const pier_secretscan_secret *secrets, size_t n,
                         pier_secretscan_warn_fn warn, void *warn_ctx);
void pier_secretscan_free(pier_secretscan *s);
/* The number of secrets actually scanned for, and of needles. */
size_t pier_secretscan_secret_count(const pier_secretscan *s);
size_t pier_secretscan_needle_count(const pier_secretscan *s);

/* Scans len bytes; returns 1 and fills hit->secret/encoding/offset on the
 * first match (hit->file untouched), 0 when none. */
int pier_secretscan_buffer(const pier_secretscan *s, const void *data, size_t len,
                           pier_secretscan_hit *hit);

/* Scans one file; rel is how the message names it. Returns 0 when clean,
 * PIER_EINVALID with the message above when it holds a secret (hit filled
 * when not NULL; free hit->file), PIER_EIO / PIER_ENOTFOUND when unreadable. */
int pier_secretscan_file(const pier_secretscan *s, const char *path, const char *rel,
                         pier_secretscan_hit *hit);

/* Scans every file under root (pier_file_walk: byte order, no symlink
 * escape) and stops at the first file that holds a secret: PIER_EINVALID
 * with the message (hit filled when not NULL). 0 when all files are clean. */
int pier_secretscan_dir(const pier_secretscan *s, const char *root, pier_secretscan_hit *hit);

/* Frees hit->file and clears hit. */
void pier_secretscan_hit_clear(pier_secretscan_hit *hit);

#endif
