// Command nnp is the entrypoint of the nonewprivs test image, installed
// setuid root: it prints its effective uid, which is 0 when the kernel honoured
// the setuid bit and the caller's uid when no_new_privs stopped it.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Printf("Effective uid: %d\n", os.Geteuid())
}
