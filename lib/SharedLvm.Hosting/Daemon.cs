using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SharedLvm.Grpc.Security;

namespace SharedLvm.Hosting;

/// <summary>
/// What a daemon is called and how it is configured: its usage text, its settings section, the
/// JSON file it reads by default, and the command-line switches that map onto settings (those in
/// <see cref="BooleanSwitches"/> take no value: --insecure).
/// </summary>
public sealed record DaemonSpec(
    string Name,
    string Usage,
    string Section,
    string DefaultConfigFile,
    IReadOnlyDictionary<string, string> Switches,
    IReadOnlyList<string> BooleanSwitches)
{
    /// <summary>SHAREDLVM_&lt;SECTION&gt;__&lt;SETTING&gt; overrides the file.</summary>
    public string EnvironmentPrefix => "SHAREDLVM_" + Section.ToUpperInvariant() + "__";
}

/// <summary>A setting the daemon can't start with; exit code 78 (EX_CONFIG): restarting won't help.</summary>
public sealed class DaemonConfigurationException(string message) : Exception(message);

/// <summary>
/// The one bootstrap of every SharedLvm daemon: --help, configuration (default JSON file, --config,
/// environment, command line, in that order of precedence), logging (journald format under systemd,
/// plain stderr otherwise), systemd notification, and exit codes systemd and scripts can act on:
/// 0, 64 (EX_USAGE: a bad switch or value), 75 (EX_TEMPFAIL: stopped itself, restart) and 78 (EX_CONFIG: missing certificates, a key others can
/// read; the unit's RestartPreventExitStatus stops a restart loop that can't succeed).
/// </summary>
public static class Daemon
{
    public const int UsageError = 64;

    /// <summary>EX_TEMPFAIL: stopped on purpose (the controller lost its writer lease); a restart is right.</summary>
    public const int TemporaryFailure = 75;
    public const int ConfigurationError = 78;
    private const string ConfigSwitch = "--config";

    public static async Task<int> RunAsync(DaemonSpec spec, string[] args, Func<string[], WebApplication> build)
    {
        if (args.Contains("--help") || args.Contains("-h"))
        {
            await Console.Out.WriteAsync(spec.Usage).ConfigureAwait(false);
            return 0;
        }

        try
        {
            await using var app = build(args);
            await app.RunAsync().ConfigureAwait(false);
            // 0, or what a daemon set before it stopped itself (TemporaryFailure).
            return Environment.ExitCode;
        }
        catch (ArgumentException e)
        {
            await Console.Error.WriteLineAsync($"{spec.Name}: {e.Message} (see --help)").ConfigureAwait(false);
            return UsageError;
        }
        catch (Exception e) when (e is TlsConfigurationException or DaemonConfigurationException)
        {
            await Console.Error.WriteLineAsync($"{spec.Name}: {e.Message}").ConfigureAwait(false);
            return ConfigurationError;
        }
    }

    /// <summary>A web application builder with the daemon's configuration and logging, nothing else.</summary>
    public static WebApplicationBuilder CreateBuilder(DaemonSpec spec, string[] args)
    {
        args = Normalize(spec, args);
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        var switches = new Dictionary<string, string>(spec.Switches, StringComparer.Ordinal) { [ConfigSwitch] = "ConfigFile" };
        builder.Configuration.Sources.Clear();
        builder.Configuration.AddJsonFile(spec.DefaultConfigFile, optional: true);
        if (new ConfigurationBuilder().AddCommandLine(args, switches).Build()["ConfigFile"] is { } extra)
        {
            var path = Path.GetFullPath(extra);
            if (!File.Exists(path))
            {
                throw new DaemonConfigurationException($"configuration file {path} (--config) does not exist");
            }

            builder.Configuration.AddJsonFile(path, optional: false);
        }

        // SHAREDLVM_CONTROLLER__LISTEN -> Controller:Listen (keys are case-insensitive).
        builder.Configuration.AddEnvironmentVariables("SHAREDLVM_");
        builder.Configuration.AddCommandLine(args, switches);

        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss.fff ";
        });
        builder.Logging.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        builder.Logging.SetMinimumLevel(LogLevel.Information);
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Logging.AddFilter("Grpc.AspNetCore.Server", LogLevel.Warning);
        // Under systemd: READY=1 once started, STOPPING=1 on shutdown, journald-formatted logs.
        // It does nothing unless systemd is this process's parent (a Type=notify unit started any
        // other way would time out waiting for READY=1).
        builder.Services.AddSystemd();
        return builder;
    }

    /// <summary>The daemon's section of the configuration, bound to its options type.</summary>
    public static TOptions Bind<TOptions>(WebApplicationBuilder builder, DaemonSpec spec)
        where TOptions : new()
    {
        var options = new TOptions();
        try
        {
            builder.Configuration.GetSection(spec.Section).Bind(options);
        }
        catch (InvalidOperationException e)
        {
            throw new ArgumentException(e.InnerException?.Message ?? e.Message, e);
        }

        return options;
    }

    /// <summary>
    /// Refuses switches the daemon does not know (a mistyped --lvm-timout would otherwise be ignored
    /// in silence) and turns bare boolean switches (--insecure) into --insecure=true. Any setting can
    /// also be given by its configuration key: --Controller:HeartbeatInterval 00:00:05.
    /// </summary>
    private static string[] Normalize(DaemonSpec spec, string[] args)
    {
        var normalized = new List<string>(args.Length);
        for (var i = 0; i < args.Length; i++)
        {
            var name = args[i].Split('=', 2)[0];
            if (spec.BooleanSwitches.Contains(name, StringComparer.Ordinal))
            {
                normalized.Add(args[i].Contains('=', StringComparison.Ordinal) ? args[i] : args[i] + "=true");
            }
            else if (spec.Switches.ContainsKey(name) || name == ConfigSwitch
                     || name.StartsWith("--" + spec.Section + ":", StringComparison.OrdinalIgnoreCase))
            {
                normalized.Add(args[i]);
                if (!args[i].Contains('=', StringComparison.Ordinal))
                {
                    if (i + 1 >= args.Length)
                    {
                        throw new ArgumentException($"{name} needs a value");
                    }

                    normalized.Add(args[++i]);
                }
            }
            else
            {
                throw new ArgumentException($"unknown option '{args[i]}'");
            }
        }

        return [.. normalized];
    }
}
