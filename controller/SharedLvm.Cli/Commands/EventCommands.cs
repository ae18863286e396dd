using System.CommandLine;
using System.Globalization;
using Grpc.Core;
using SharedLvm.Contracts.V1;
using static SharedLvm.Cli.Connection;
using static SharedLvm.Cli.Printing;

namespace SharedLvm.Cli.Commands;

/// <summary>slvm events: the controller's event stream.</summary>
internal static class EventCommands
{
    public static Command Build(TextWriter stdout, TextWriter stderr)
    {
        var events = new Command("events", "Controller events.");
        var after = new Option<ulong>("--after") { Description = "Replay retained events after this sequence number first." };
        var watch = new Command("watch", "Stream events until interrupted.") { after };
        watch.SetAction((p, ct) => Run(p, stdout, stderr, ct, async (api, o, options) =>
        {
            using var call = api.WatchEvents(new WatchEventsRequest { AfterSequence = p.GetValue(after) }, options.WithDeadline(DateTime.MaxValue));
            await foreach (var e in call.ResponseStream.ReadAllAsync(options.CancellationToken))
            {
                if (o.Json)
                {
                    stdout.WriteLine(Google.Protobuf.JsonFormatter.Default.Format(e));
                }
                else
                {
                    stdout.WriteLine($"{e.Sequence,6} {e.Time.ToDateTimeOffset():O} {e.Kind,-26} {e.Subject} {e.Message}");
                }
            }
        }));
        events.Subcommands.Add(watch);
        return events;
    }
}
