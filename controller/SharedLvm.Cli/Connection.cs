using System.CommandLine;
using System.Text.Json;
using Grpc.Core;
using SharedLvm.Contracts.Conventions;
using SharedLvm.Grpc;
using SharedLvm.Grpc.Security;
using ControllerRpc = SharedLvm.Contracts.V1.Controller;

namespace SharedLvm.Cli;

/// <summary>
/// How slvm reaches the controller: its address and credentials (flag, else environment, else
/// slvm.json), one channel per command, and the exit code: 0, the gRPC status of a failed call
/// (5 NOT_FOUND, 9 FAILED_PRECONDITION, 14 UNAVAILABLE...), or 64 for bad usage.
/// </summary>
internal static class Connection
{
    public const int UsageError = 64;
    public const string DefaultController = "127.0.0.1:7400";

    public static readonly Option<string?> ControllerOption = new("--controller")
    {
        Description = "Controller address: host:port (https when a CA is given, else http) or a URL; several, comma-separated, for a cluster with standbys: slvm follows the active one. Else $SLVM_CONTROLLER, ~/.config/sharedlvm/slvm.json or /etc/sharedlvm/slvm.json {\"controller\": ...}, else " + DefaultController + ".",
        Recursive = true,
    };

    public static readonly Option<string?> CaOption = new("--ca")
    {
        Description = "Cluster CA certificate: turns on TLS and verifies the controller. Else $SLVM_CA or \"ca\" in slvm.json.",
        Recursive = true,
    };

    public static readonly Option<string?> CertOption = new("--cert")
    {
        Description = "Client certificate from scripts/pki client NAME ROLE. Else $SLVM_CERT or \"cert\". Without one, $SLVM_TOKEN (a bearer token; never on the command line, where ps shows it).",
        Recursive = true,
    };

    public static readonly Option<string?> KeyOption = new("--key") { Description = "The client certificate's key. Else $SLVM_KEY or \"key\".", Recursive = true };

    public static readonly Option<bool> JsonOption = new("--json") { Description = "Print JSON (proto3 mapping) for scripts.", Recursive = true };

    public static readonly Option<double> TimeoutOption = new("--timeout") { Description = "Seconds to wait for the controller.", DefaultValueFactory = _ => 120, Recursive = true };

    /// <summary>Every command's shared options: where the controller is, how to prove who we are, how to print.</summary>
    public static IEnumerable<Option> GlobalOptions => [ControllerOption, JsonOption, TimeoutOption, CaOption, CertOption, KeyOption];

    public static async Task<int> Run(ParseResult parse, TextWriter stdout, TextWriter stderr, CancellationToken cancellationToken,
        Func<ControllerRpc.ControllerClient, Output, CallOptions, Task> action)
    {
        IReadOnlyList<string> addresses;
        TransportSecurity security;
        try
        {
            var ca = Setting(parse.GetValue(CaOption), "SLVM_CA", "ca");
            addresses = ResolveControllers(parse.GetValue(ControllerOption), tls: ca is not null);
            var cert = Setting(parse.GetValue(CertOption), "SLVM_CERT", "cert");
            var key = Setting(parse.GetValue(KeyOption), "SLVM_KEY", "key");
            security = ca is null
                ? TransportSecurity.Plaintext
                : new TransportSecurity(cert is null ? ClusterTls.TrustOnly(ca) : ClusterTls.Load(new TlsFiles(ca, cert, key ?? Path.ChangeExtension(cert, ".key"))));
        }
        catch (Exception e) when (e is FormatException or TlsConfigurationException or ArgumentException)
        {
            await stderr.WriteLineAsync("slvm: " + e.Message);
            return UsageError;
        }

        using var _ = security;
        var headers = new Metadata();
        if (Environment.GetEnvironmentVariable("SLVM_TOKEN") is { Length: > 0 } token)
        {
            headers.Add("authorization", "Bearer " + token);
        }

        var options = new CallOptions(headers, DateTime.UtcNow.AddSeconds(parse.GetValue(TimeoutOption)), cancellationToken);
        var candidates = new Queue<string>(addresses);
        var tried = new HashSet<string>(StringComparer.Ordinal);
        while (true)
        {
            var address = candidates.Dequeue();
            tried.Add(address);
            using var channel = security.Dial(address, PeerRoles.Controller, refused: why => stderr.WriteLine("slvm: the controller's certificate is refused: " + why));
            try
            {
                var interactive = ReferenceEquals(stdout, Console.Out) && !Console.IsOutputRedirected;
                await action(new ControllerRpc.ControllerClient(channel), new Output(stdout, parse.GetValue(JsonOption), interactive), options);
                return 0;
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Unavailable && NextController(e, address, candidates, tried, security.Tls is not null) is { } next)
            {
                // A standby (it names the active controller) or a controller that can't be reached:
                // the call never started there, so trying the next one is safe.
                await stderr.WriteLineAsync($"slvm: {address}: {e.Status.Detail} Trying {next}.");
            }
            catch (RpcException e)
            {
                await stderr.WriteLineAsync($"slvm: {StatusNames.Of(e.StatusCode)}: {e.Status.Detail}");
                return (int)e.StatusCode;
            }
            catch (FormatException e)
            {
                await stderr.WriteLineAsync("slvm: " + e.Message);
                return UsageError;
            }
        }
    }

    /// <summary>
    /// Where to go after UNAVAILABLE from <paramref name="address"/>: the active controller a standby
    /// names, else (no connection at all) the next address given; null when there is nowhere left.
    /// </summary>
    private static string? NextController(RpcException e, string address, Queue<string> candidates, HashSet<string> tried, bool tls)
    {
        if (e.Trailers.GetValue(ActiveController.Trailer) is { Length: > 0 } active && ResolveControllers(active, tls)[0] is var named && !tried.Contains(named))
        {
            var rest = candidates.Where(c => c != named).ToArray();
            candidates.Clear();
            candidates.Enqueue(named);
            foreach (var other in rest)
            {
                candidates.Enqueue(other);
            }
        }
        else if (e.Trailers.GetValue(ActiveController.Trailer) is not null || e.Status.DebugException is null)
        {
            // A standby that knows no active controller, or an answer from a live controller: not a
            // reason to try elsewhere.
            return null;
        }

        return candidates.TryPeek(out var next) ? next : null;
    }

    internal static IReadOnlyList<string> ResolveControllers(string? flag, bool tls = false)
    {
        var setting = flag ?? Environment.GetEnvironmentVariable("SLVM_CONTROLLER") ?? FromConfigFiles("controller") ?? DefaultController;
        return setting.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(address =>
        {
            if (!address.Contains("://", StringComparison.Ordinal))
            {
                address = (tls ? "https://" : "http://") + address;
            }

            return Uri.TryCreate(address, UriKind.Absolute, out _) ? address : throw new FormatException($"controller address '{address}' is not a URL.");
        }).DefaultIfEmpty(tls ? "https://" + DefaultController : "http://" + DefaultController).ToArray();
    }

    /// <summary>A setting from its flag, else its environment variable, else slvm.json.</summary>
    private static string? Setting(string? flag, string variable, string key) =>
        flag ?? (Environment.GetEnvironmentVariable(variable) is { Length: > 0 } value ? value : null) ?? FromConfigFiles(key);

    private static string? FromConfigFiles(string key)
    {
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        foreach (var path in new[] { Path.Combine(home, ".config", "sharedlvm", "slvm.json"), "/etc/sharedlvm/slvm.json" })
        {
            if (File.Exists(path))
            {
                using var document = JsonDocument.Parse(File.ReadAllText(path));
                if (document.RootElement.TryGetProperty(key, out var value) && value.GetString() is { Length: > 0 } setting)
                {
                    return setting;
                }
            }
        }

        return null;
    }

}
