# Augmenting declarations for rule.py: Rule becomes an extension type with ``public object``
# fields (its slots), so the datapath's and the batch table's per-packet crediting
# (n_packets, n_bytes, last_used_ms), which cimport it, reads and writes struct members;
# credit_rules, that crediting, is a C call from them.
cimport cython


cdef class Rule:
    cdef public object table_id, priority, match, actions, cookie, idle_timeout, hard_timeout
    cdef public object importance, flags, created_ms, modified_ms, last_used_ms
    # The OpenFlow counters as C integers (credit_rules adds in C, no int object per count); they
    # count up from 0 or are reset to 0, and a saved state is checked to hold such values.
    cdef public unsigned long long n_packets, n_bytes
    cdef public object seq, installed


@cython.locals(r=Rule)
cpdef credit_rules(rules, unsigned long long packets, unsigned long long nbytes, used)
