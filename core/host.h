/*
 * host -- the event loop, and the services table each plugin is given.
 *
 * One libuv loop, run on the main thread, owns scheduling and all
 * non-blocking I/O.  host_post() is how other threads hand work to it.
 */
#ifndef CORE_HOST_H
#define CORE_HOST_H

#include <uv.h>

#include <watchpost/plugin.h>

extern uv_loop_t *main_loop;

/* Create the loop; the calling thread becomes the loop thread. 0 or WP_E*. */
int host_loop_init(void);
/* Close every remaining handle and the loop.  Loop thread, after uv_run. */
void host_loop_close(void);
/* Is the caller the loop thread? */
int host_on_loop(void);

/* Run fn(arg) on the loop thread, soon, in FIFO order.  Any thread. */
void host_post(void (*fn)(void *arg), void *arg);

/* The operation completion service: runtime_complete() (runtime.h). */
typedef void (*host_complete_fn)(struct wp_op *op, const struct wp_result *res);

/*
 * A services table for the plugin NAME (copied), whole from the start:
 * COMPLETE is its complete() service -- the runtime's runtime_complete(),
 * passed in so this file does not depend on the runtime.  The plugin
 * borrows the table until host_free().  Never fails (aborts on memory
 * exhaustion).
 */
struct wp_host *host_new(const char *name, host_complete_fn complete);
void host_free(struct wp_host *h);

/* Free a handle once libuv has closed it (its data is the allocation). */
void host_close_free(uv_handle_t *h);

#endif
