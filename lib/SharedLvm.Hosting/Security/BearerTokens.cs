using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using SharedLvm.Grpc.Security;

namespace SharedLvm.Hosting.Security;

/// <summary>
/// API bearer tokens from a file of "NAME ROLE sha256:HEX" lines (scripts/pki token). Only hashes
/// are stored, so the file leaks no credential. The file is reread when it changes: revoking a token
/// is deleting its line, no restart.
/// </summary>
public sealed class BearerTokens
{
    private static readonly TimeSpan CheckInterval = TimeSpan.FromSeconds(1);
    private readonly string _path;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly object _gate = new();
    private Dictionary<string, PeerIdentity> _byHash = new(StringComparer.Ordinal);
    private DateTime _loadedWrite = DateTime.MinValue;
    private DateTimeOffset _lastCheck = DateTimeOffset.MinValue;

    public BearerTokens(string path, TimeProvider time, ILogger logger)
    {
        _path = path;
        _time = time;
        _logger = logger;
        if (File.Exists(path))
        {
            ClusterTls.CheckKeyPermissions(path, "bearer tokens file");
        }

        Reload();
    }

    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _byHash.Count;
            }
        }
    }

    /// <summary>The identity a presented token stands for, or null. The token itself is never logged.</summary>
    public PeerIdentity? Find(string token)
    {
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));
        lock (_gate)
        {
            // A known token is rechecked against the file at most once a second (revocation takes
            // effect within a second); an unknown one always is (a stat), so a token issued a moment
            // ago works at once instead of being refused until the next check.
            if (_time.GetUtcNow() - _lastCheck >= CheckInterval || !_byHash.ContainsKey(hash))
            {
                Reload();
            }

            return _byHash.GetValueOrDefault(hash);
        }
    }

    private void Reload()
    {
        _lastCheck = _time.GetUtcNow();
        var written = File.Exists(_path) ? File.GetLastWriteTimeUtc(_path) : DateTime.MinValue;
        if (written == _loadedWrite)
        {
            return;
        }

        var tokens = new Dictionary<string, PeerIdentity>(StringComparer.Ordinal);
        var lineNumber = 0;
        foreach (var raw in written == DateTime.MinValue ? [] : File.ReadAllLines(_path))
        {
            lineNumber++;
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length != 3 || !fields[2].StartsWith("sha256:", StringComparison.Ordinal) || fields[2].Length != 7 + 64
                || fields[1] is not (PeerRoles.Reader or PeerRoles.Operator or PeerRoles.Admin))
            {
                // A broken file keeps the tokens that were valid: a typo must not lock every client out.
                HostingLog.TokensBadLine(_logger, _path, lineNumber);
                return;
            }

            tokens[fields[2][7..].ToLowerInvariant()] = new PeerIdentity(fields[0], fields[1], "token");
        }

        _byHash = tokens;
        _loadedWrite = written;
        HostingLog.TokensLoaded(_logger, _path, tokens.Count);
    }
}
