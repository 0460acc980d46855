package ringbuffer

/*
#include "mrb.h"
*/
import "C"

// Version returns the release version of this package and of the C core
// compiled into it, "MAJOR.MINOR.PATCH" (the C library's mrb_version()).
// The Go module is tagged bindings/go/vMAJOR.MINOR.PATCH for it.
func Version() string {
	return C.GoString(C.mrb_version())
}
