using System.Text.Encodings.Web;
using System.Text.Json;
using Google.Protobuf;
using Grpc.Core;
using SharedLvm.Grpc;
using SharedLvm.Grpc.Security;
using Microsoft.Extensions.Logging;

namespace SharedLvm.Hosting.Security;

/// <summary>
/// One JSON line per mutating call and per refused call: who, from where, what, when, the result.
/// Appended and flushed per line, so a crash loses at most the call in flight.
/// </summary>
public sealed class AuditLog : IDisposable
{
    private const int MaxRequestChars = 2048;
    private static readonly JsonFormatter RequestFormatter = new(JsonFormatter.Settings.Default.WithFormatDefaultValues(false));
    private readonly StreamWriter _writer;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly object _gate = new();

    public AuditLog(string path, TimeProvider time, ILogger logger)
    {
        Path = path;
        _time = time;
        _logger = logger;
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!);
        var stream = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        _writer = new StreamWriter(stream) { AutoFlush = true };
    }

    public string Path { get; }

    public void Record(PeerIdentity? who, string peer, string method, IMessage? request, Status status)
    {
        var requestJson = request is null ? "{}" : RequestFormatter.Format(request);
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            json.WriteString("time", _time.GetUtcNow().ToString("O", System.Globalization.CultureInfo.InvariantCulture));
            json.WriteString("who", who?.Name ?? "unauthenticated");
            json.WriteString("role", who?.Role ?? string.Empty);
            json.WriteString("via", who?.Via ?? "none");
            json.WriteString("peer", peer);
            json.WriteString("method", method);
            json.WritePropertyName("request");
            if (requestJson.Length <= MaxRequestChars)
            {
                // The request as an object, so `jq .request.name` works; protobuf's JSON is valid JSON.
                json.WriteRawValue(requestJson, skipInputValidation: true);
            }
            else
            {
                json.WriteStringValue(requestJson[..MaxRequestChars] + "...");
            }

            json.WriteString("code", StatusNames.Of(status.StatusCode));
            json.WriteString("detail", status.Detail);
            json.WriteEndObject();
        }

        var line = System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
        lock (_gate)
        {
            try
            {
                _writer.WriteLine(line);
            }
            catch (IOException e)
            {
                // The call already happened; losing its audit line is logged, not hidden.
                HostingLog.AuditWriteFailed(_logger, Path, method, e);
            }
        }
    }

    public void Dispose() => _writer.Dispose();
}
