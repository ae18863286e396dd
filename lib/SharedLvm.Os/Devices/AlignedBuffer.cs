using System.Runtime.InteropServices;

namespace SharedLvm.Os.Devices;

/// <summary>Page-aligned native memory: O_DIRECT refuses unaligned buffers.</summary>
public sealed unsafe class AlignedBuffer : IDisposable
{
    private readonly void* _memory;
    private readonly int _length;

    public AlignedBuffer(int length)
    {
        _length = length;
        _memory = NativeMemory.AlignedAlloc((nuint)length, BlockDevice.Alignment);
    }

    public Span<byte> Span => new(_memory, _length);

    public void Dispose() => NativeMemory.AlignedFree(_memory);
}
