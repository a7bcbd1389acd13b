"""The per-step timing hook of the generated C (``tvmc run --profile``).

A profile build (``-DTE_PROFILE``) calls ``te_profile_mark(s)`` before step
``s`` of ``<name>_invoke`` and ``te_profile_mark(<NAME>_NUM_STEPS)`` after the
last; the firmware's server (``firmware/src/te_protocol.c``) or the host
harness (``firmware/host/te_profile_host.c``) defines it. Otherwise the marks
compile to nothing, so the plain build is the one measured everywhere else.
"""

#: Declared and defined at the top of ``src/<name>.c``.
PROFILE_HOOK = """
#ifdef TE_PROFILE
void te_profile_mark(uint32_t step);
#define TE_PROFILE_MARK(step) te_profile_mark(step)
#else
#define TE_PROFILE_MARK(step) ((void)0)
#endif
"""
