/*
 * src/wire/wire.h - every mesh wire codec (upstream Net wire v1) in one
 * include. The wire layer sits above src/crypto and below src/mesh; it
 * does no I/O. docs/PROTOCOL.md §8 documents every byte.
 */
#ifndef NMI_WIRE_H
#define NMI_WIRE_H

#include "wire/control.h"
#include "wire/frame.h"
#include "wire/header.h"
#include "wire/membership.h"
#include "wire/packet.h"
#include "wire/pingwave.h"
#include "wire/route.h"

#endif
