/* SPDX-License-Identifier: MIT */
#include "mrb/mrb.h"

const char *mrb_version(void)
{
	return MRB_VERSION;
}
