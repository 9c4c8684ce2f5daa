"""A seccomp filter that stops a grading kernel from starting processes, native code included.

The guard refuses ``os.fork``, ``subprocess`` and the rest through their audit events, but native
code (a C extension, a library call through a bypass of the guard) raises none.  Resource limits
cannot bound such a fork bomb either: inside bubblewrap the kernel maps to root outside its user
namespace, where ``RLIMIT_NPROC`` does not apply.  So once the kernel is ready and before any
student code runs, it installs this filter on itself.  It is inherited by every thread and can
never be removed:

* ``fork`` and ``vfork`` fail with ``EPERM``, and so does ``clone`` unless it makes a thread of
  the same process (``CLONE_THREAD``): threads (ipykernel's, PyTorch's, OpenBLAS's) still start;
* ``clone3`` fails with ``ENOSYS``: its flags lie in memory, out of a filter's reach, and C
  libraries answer ``ENOSYS`` by making the same thread with ``clone``;
* a system call of another ABI (32-bit calls on x86-64, x32) fails with ``EPERM``, since the
  numbers above are those of this machine's own ABI.

Everything else is allowed: the namespaces, the read-only file system and the limits already
close the rest.  The filter is a classic BPF program (``struct sock_filter``) built here, so no
library is needed; machines other than x86-64 and AArch64 grade without it, and say so.
"""

from __future__ import annotations

import ctypes
import errno
import platform
import struct

# <linux/audit.h>: the ABI a system call came through; <asm/unistd.h>: the numbers on that ABI.
_ABIS = {
    "x86_64": {"arch": 0xC000003E, "fork": 57, "vfork": 58, "clone": 56, "clone3": 435},
    "aarch64": {"arch": 0xC00000B7, "fork": None, "vfork": None, "clone": 220, "clone3": 435},
}
_X32_SYSCALL_BIT = 0x40000000
CLONE_THREAD = 0x00010000

# <linux/filter.h> and <linux/seccomp.h>
_LD_W_ABS, _JEQ_K, _JGE_K, _JSET_K, _RET_K = 0x20, 0x15, 0x35, 0x45, 0x06
_ALLOW = 0x7FFF0000
_ERRNO = 0x00050000
_NR, _ARCH, _ARG0_LOW = 0, 4, 16          # offsets in struct seccomp_data (little endian)
_PR_SET_NO_NEW_PRIVS, _PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 38, 22, 2


class _SockFprog(ctypes.Structure):
    """``struct sock_fprog``: the program's length in instructions, and where they are."""
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _program(abi: dict) -> list[tuple[int, int, int, int]]:
    """The filter's instructions, (code, jump if true, jump if false, constant) each."""
    refuse, no_such_call = _ERRNO | errno.EPERM, _ERRNO | errno.ENOSYS
    forks = [abi[name] for name in ("fork", "vfork") if abi[name] is not None]
    program = [(_LD_W_ABS, 0, 0, _ARCH),
               (_JEQ_K, 1, 0, abi["arch"]),
               (_RET_K, 0, 0, refuse),                       # another ABI
               (_LD_W_ABS, 0, 0, _NR)]
    if abi["arch"] == _ABIS["x86_64"]["arch"]:
        program += [(_JGE_K, 0, 1, _X32_SYSCALL_BIT), (_RET_K, 0, 0, refuse)]
    program += [(_JEQ_K, 0, 1, abi["clone3"]), (_RET_K, 0, 0, no_such_call)]
    for number in forks:
        program += [(_JEQ_K, 0, 1, number), (_RET_K, 0, 0, refuse)]
    program += [(_JEQ_K, 0, 3, abi["clone"]),
                (_LD_W_ABS, 0, 0, _ARG0_LOW),
                (_JSET_K, 1, 0, CLONE_THREAD),
                (_RET_K, 0, 0, refuse),                      # a new process
                (_RET_K, 0, 0, _ALLOW)]
    return program


def forbid_new_processes() -> str:
    """Install the filter on this process: "" once installed, otherwise why not (it grades on without)."""
    abi = _ABIS.get(platform.machine())
    if abi is None:
        return f"no process filter on {platform.machine()} (only x86_64 and aarch64)"
    program = _program(abi)
    code = b"".join(struct.pack("HBBI", *instruction) for instruction in program)
    instructions = ctypes.create_string_buffer(code, len(code))
    fprog = _SockFprog(len(program), ctypes.cast(instructions, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, None, 0, 0) != 0 or \
            libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        return f"the process filter was refused: {errno.errorcode.get(ctypes.get_errno(), ctypes.get_errno())}"
    return ""
