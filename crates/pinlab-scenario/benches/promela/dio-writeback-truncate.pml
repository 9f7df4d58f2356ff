/*
 * dio-writeback-truncate-p3-d2 in Promela, for the SPIN comparison of
 * benches/compare.rs (section 4). Same actors and steps as
 * scenarios/scale/dio-writeback-truncate-p3-d2.scn under `legacy`: app sets up
 * a 3-page ext4 file mapped MAP_SHARED and forks two direct-I/O readers; each
 * pins the 3 pages (GUP, FOLL_WRITE), lets the device DMA into them, and
 * unpins them dirty; the flusher writes the file back in two steps (submit,
 * complete), kswapd reclaims clean unpinned pages once, admin truncates the
 * file to 0 (waiting for writeback). Every pinlab step is one atomic block.
 *
 * Coarser than pinlab: no reference counts beyond pins, no frame allocator,
 * content is a small tag, and the oracles are flags (LOST: an acknowledged DMA
 * that no read of the file can return; OOPS: writeback of a dirty page without
 * buffers). The end states are checked by SPIN's invalid-end-state search
 * (deadlock) only: the comparison is about exploring the same shape.
 */
#define P 3
#define D 2

byte incache[P];   /* page-cache page present */
byte mapped[P];    /* PTE present in app's mm */
byte ptew[P];      /* PTE writable (clean pages are write-protected) */
byte dirty[P];
byte wb[P];        /* PG_writeback */
byte bufs[P];      /* buffers attached (ext4 block reservation) */
byte pins[P];
byte data[P];      /* content of the page-cache page */
byte orphan[P];    /* a pinned page truncate removed from the cache */
byte odata[P];     /* content of the orphaned page */
byte block[P];     /* content on disk */
byte isize = 0;    /* pages */
bool bug = false;
bool lost = false;
byte efault = 0;
byte started = 0;

inline fault_write(i) {
    if
    :: !incache[i] -> incache[i] = 1; data[i] = block[i]; bufs[i] = 1
    :: else -> skip
    fi;
    mapped[i] = 1; ptew[i] = 1; dirty[i] = 1; bufs[i] = 1
}

proctype dio(byte id) {
    byte i; bool ok = true;
    /* pin: GUP faults every page in (FOLL_WRITE); beyond EOF it fails */
    atomic {
        if
        :: isize < P -> ok = false; efault++
        :: else ->
            i = 0;
            do
            :: i < P -> fault_write(i); pins[i]++; i++
            :: else -> break
            od
        fi
    }
    if
    :: ok ->
        /* the device DMAs 'S' into the pinned pages */
        atomic {
            i = 0;
            do
            :: i < P ->
                if
                :: orphan[i] && pins[i] > 0 -> odata[i] = 2; lost = true
                :: else -> data[i] = 2
                fi;
                i++
            :: else -> break
            od
        }
        /* unpin_user_pages_dirty_lock */
        atomic {
            i = 0;
            do
            :: i < P ->
                pins[i]--;
                if
                :: orphan[i] -> skip
                :: else -> dirty[i] = 1
                fi;
                if
                :: pins[i] == 0 -> orphan[i] = 0
                :: else -> skip
                fi;
                i++
            :: else -> break
            od
        }
    :: else -> skip
    fi
}

proctype app() {
    byte i;
    atomic { isize = P }                         /* pwrite + fsync of src, ftruncate(dst) */
    atomic { skip }                               /* open dst */
    atomic { skip }                               /* mmap MAP_SHARED */
    atomic {                                      /* memset(buf, 'B') */
        i = 0;
        do
        :: i < P -> fault_write(i); data[i] = 1; i++
        :: else -> break
        od
    }
    atomic { run dio(0); started++ }
    atomic { run dio(1); started++ }
}

proctype admin() {
    byte i;
    atomic { skip }                               /* open */
    /* ftruncate(fd, 0): waits for writeback, unmaps, drops the pages */
    atomic {
        (wb[0] == 0 && wb[1] == 0 && wb[2] == 0);
        i = 0;
        do
        :: i < P ->
            if
            :: incache[i] ->
                if
                :: pins[i] > 0 -> orphan[i] = 1; odata[i] = data[i]
                :: else -> skip
                fi;
                incache[i] = 0; mapped[i] = 0; dirty[i] = 0; bufs[i] = 0
            :: else -> skip
            fi;
            block[i] = 0;
            i++
        :: else -> break
        od;
        isize = 0
    }
}

proctype flusher() {
    byte i;
    atomic {                                      /* submit: clean, write-protect, PG_writeback */
        i = 0;
        do
        :: i < P ->
            if
            :: incache[i] && dirty[i] ->
                if
                :: !bufs[i] -> bug = true
                :: else -> dirty[i] = 0; ptew[i] = 0; wb[i] = 1
                fi
            :: else -> skip
            fi;
            i++
        :: else -> break
        od
    }
    atomic {                                      /* complete: the block gets the data */
        i = 0;
        do
        :: i < P ->
            if
            :: wb[i] -> block[i] = data[i]; wb[i] = 0
            :: else -> skip
            fi;
            i++
        :: else -> break
        od
    }
}

proctype kswapd() {
    byte i;
    atomic {                                      /* shrink_folio_list: clean, unpinned, unmapped */
        i = 0;
        do
        :: i < P ->
            if
            :: incache[i] && !dirty[i] && !wb[i] && pins[i] == 0 && !mapped[i] ->
                incache[i] = 0; bufs[i] = 0
            :: else -> skip
            fi;
            i++
        :: else -> break
        od
    }
}

init {
    atomic {
        run app();
        run admin();
        run flusher();
        run kswapd()
    }
}
