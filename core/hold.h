#ifndef CORE_HOLD_H
#define CORE_HOLD_H
#endif
