/*
 * version.h: the release, as --version prints it and the statistics
 * report it.
 */
#ifndef PREFORKD_VERSION_H
#define PREFORKD_VERSION_H

#define PREFORKD_VERSION	"0.1.0"

#endif
