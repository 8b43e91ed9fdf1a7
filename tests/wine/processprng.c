/*
 * A stand-in for Windows' bcryptprimitives.dll, for running our Windows builds under
 * Wine 8 (Debian 12), which has no such DLL. Rust's standard library takes its randomness
 * from ProcessPrng there, and a program that cannot load it does not start.
 *
 * Test-only: scripts/wine-run puts it beside a test's .exe; it is never packaged. It asks
 * RtlGenRandom (advapi32's SystemFunction036, which Wine implements over the host's
 * random source) for the bytes.
 *
 * Built with mingw-w64:
 *   x86_64-w64-mingw32-gcc -shared -O2 -o bcryptprimitives.dll processprng.c -ladvapi32
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

/* Windows' own ProcessPrng always succeeds; so does this one, or it says it did not. */
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
