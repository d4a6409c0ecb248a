#pragma once

// The C heap of a long-running daemon. glibc gives each thread that allocates concurrently its
// own arena (up to 8 per core), and a freed chunk inside an arena goes back to the system only
// when it sits at the top of that arena; a burst of deliveries therefore leaves memory behind that
// the daemon no longer uses. Two arenas are enough for billsync's few threads, and handing the
// free pages back after a burst keeps the resident size close to what is in use. Elsewhere (other
// C libraries, Windows) both calls do nothing.
namespace billsync::daemon::platform {

// At start, before the threads exist: at most two heap arenas, unless the operator set
// MALLOC_ARENA_MAX in the environment (that setting wins).
void limit_heap_arenas();

// Gives free heap pages back to the system (glibc malloc_trim). Cheap enough to call every few
// seconds; it takes the heap's locks for the time it walks the free lists.
void release_free_heap();

}  // namespace billsync::daemon::platform
