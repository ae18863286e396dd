using System.Text.Json;
using Google.Protobuf;
using Microsoft.Extensions.Logging;

namespace SharedLvm.Grpc.Security;

/// <summary>
/// One JSON line per mutating call and per refused call: who, from where, what, when, the result.
/// Appended and flushed per line, so a crash loses at most the call in flight.
/// </summary>
public sealed partial class AuditLog : IDisposable
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
        var requestJson = request is null ? string.Empty : RequestFormatter.Format(request);
        if (requestJson.Length > MaxRequestChars)
        {
            requestJson = requestJson[..MaxRequestChars] + "...";
        }

        var line = JsonSerializer.Serialize(new AuditEntry(
            _time.GetUtcNow().ToString("O", System.Globalization.CultureInfo.InvariantCulture),
            who?.Name ?? "unauthenticated", who?.Role ?? string.Empty, who?.Via ?? "none", peer, method, requestJson,
            GrpcProtocol.StatusName(status.Code), status.Detail), AuditJsonContext.Default.AuditEntry);
        lock (_gate)
        {
            try
            {
                _writer.WriteLine(line);
            }
            catch (IOException e)
            {
                // The call already happened; losing its audit line is logged, not hidden.
                LogWriteFailed(_logger, Path, method, e);
            }
        }
    }

    public void Dispose() => _writer.Dispose();

    [LoggerMessage(Level = LogLevel.Error, Message = "audit: writing {Path} failed for {Method}")]
    private static partial void LogWriteFailed(ILogger logger, string path, string method, Exception e);
}

internal sealed record AuditEntry(string Time, string Who, string Role, string Via, string Peer, string Method, string Request, string Code, string Detail);

[System.Text.Json.Serialization.JsonSourceGenerationOptions(PropertyNamingPolicy = System.Text.Json.Serialization.JsonKnownNamingPolicy.SnakeCaseLower)]
[System.Text.Json.Serialization.JsonSerializable(typeof(AuditEntry))]
internal sealed partial class AuditJsonContext : System.Text.Json.Serialization.JsonSerializerContext;
