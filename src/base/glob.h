/*
 * glob: path patterns as build tools use them (gitignore, CodeBuild
 * artifacts, bundler configs).
 *
 *   *       any run of characters except '/'
 *   **      any run of characters including '/', as a whole path segment:
 *           "a/ ** /b" (no spaces) matches a/b, a/x/b, a/x/y/b; a trailing
 *           "dir/ **" matches everything under dir; a leading "** /x"
 *           matches x at any depth
 *   ?       one character except '/'
 *   [abc] [a-z] [!a-z] [^a-z]   one character from (or not from) a set
 *   {a,b,c} alternatives, which may nest and hold other patterns
 *   \x      the character x itself
 *
 * Matching is on bytes, case-sensitive, of the whole path. Pure; no
 * allocation except for brace expansion.
 */
#ifndef PIER_GLOB_H
#define PIER_GLOB_H

#include <stdbool.h>

bool pier_glob_match(const char *pattern, const char *path);
/* True when the pattern contains no wildcard, so it names one path. */
bool pier_glob_is_literal(const char *pattern);
/* Checks a pattern's syntax (unclosed [ or {); PIER_EINVALID with a message
 * naming the pattern. */
int pier_glob_validate(const char *pattern);

#endif
