using System.Buffers;
using System.IO.Compression;
using System.IO.Pipelines;
using Google.Protobuf;

namespace SharedLvm.Grpc;

/// <summary>Length-prefixed message framing shared by server and client.</summary>
internal static class MessageFraming
{
    /// <summary>
    /// Reads the next message, or null at a clean end of stream. Protocol violations become
    /// <see cref="RpcException"/>: oversize is RESOURCE_EXHAUSTED, a truncated frame or
    /// undecodable bytes INTERNAL, an unknown compression UNIMPLEMENTED.
    /// </summary>
    public static async ValueTask<IMessage?> ReadMessageAsync(
        PipeReader reader, MessageParser parser, int maxMessageSize, string? encoding, CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            if (GrpcProtocol.TryReadFrameHeader(buffer, out var compressed, out var length))
            {
                if (length > maxMessageSize)
                {
                    reader.AdvanceTo(buffer.Start);
                    throw new RpcException(StatusCode.ResourceExhausted,
                        $"Received message exceeds the maximum configured message size ({length} > {maxMessageSize} bytes).");
                }

                var frameLength = GrpcProtocol.FrameHeaderSize + (long)length;
                if (buffer.Length >= frameLength)
                {
                    var payload = buffer.Slice(GrpcProtocol.FrameHeaderSize, length);
                    try
                    {
                        return compressed
                            ? parser.ParseFrom(Decompress(payload, encoding, maxMessageSize))
                            : parser.ParseFrom(payload);
                    }
                    catch (InvalidProtocolBufferException e)
                    {
                        throw new RpcException(new Status(StatusCode.Internal, "Failed to deserialize message: " + e.Message), e);
                    }
                    finally
                    {
                        reader.AdvanceTo(buffer.GetPosition(frameLength));
                    }
                }
            }

            if (result.IsCompleted)
            {
                var remaining = buffer.Length;
                reader.AdvanceTo(buffer.End);
                if (remaining == 0)
                {
                    return null;
                }

                throw new RpcException(StatusCode.Internal, "Incomplete message: the stream ended inside a frame.");
            }

            reader.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    public static async ValueTask WriteMessageAsync(
        PipeWriter writer, IMessage message, int maxMessageSize, CancellationToken cancellationToken)
    {
        WriteFrame(writer, message, maxMessageSize);
        await writer.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    public static byte[] Frame(IMessage message, int maxMessageSize)
    {
        var buffer = new ArrayBufferWriter<byte>();
        WriteFrame(buffer, message, maxMessageSize);
        return buffer.WrittenSpan.ToArray();
    }

    private static void WriteFrame(IBufferWriter<byte> writer, IMessage message, int maxMessageSize)
    {
        var size = message.CalculateSize();
        if (size > maxMessageSize)
        {
            throw new RpcException(StatusCode.ResourceExhausted,
                $"Sending message exceeds the maximum configured message size ({size} > {maxMessageSize} bytes).");
        }

        var span = writer.GetSpan(GrpcProtocol.FrameHeaderSize + size);
        GrpcProtocol.WriteFrameHeader(span, compressed: false, size);
        message.WriteTo(span.Slice(GrpcProtocol.FrameHeaderSize, size));
        writer.Advance(GrpcProtocol.FrameHeaderSize + size);
    }

    private static byte[] Decompress(ReadOnlySequence<byte> payload, string? encoding, int maxMessageSize)
    {
        if (string.IsNullOrEmpty(encoding) || string.Equals(encoding, "identity", StringComparison.Ordinal))
        {
            throw new RpcException(StatusCode.Internal, "Message is flagged compressed but no grpc-encoding was given.");
        }

        if (!string.Equals(encoding, "gzip", StringComparison.Ordinal))
        {
            throw new RpcException(StatusCode.Unimplemented,
                $"Unsupported grpc-encoding '{encoding}'. Supported encodings: {GrpcProtocol.SupportedEncodings}.");
        }

        using var input = new MemoryStream(payload.ToArray());
        using var gzip = new GZipStream(input, CompressionMode.Decompress);
        using var output = new MemoryStream();
        var chunk = new byte[81920];
        int read;
        while ((read = gzip.Read(chunk, 0, chunk.Length)) > 0)
        {
            if (output.Length + read > maxMessageSize)
            {
                throw new RpcException(StatusCode.ResourceExhausted,
                    $"Decompressed message exceeds the maximum configured message size ({maxMessageSize} bytes).");
            }

            output.Write(chunk, 0, read);
        }

        return output.ToArray();
    }
}
