#include "config.h"
#include "hold.h"
int hold_placeholder_;
