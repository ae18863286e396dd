using System.Reflection;
using Microsoft.Extensions.Logging;

namespace SharedLvm.Tests.Conventions;

/// <summary>
/// Every component logs through one [LoggerMessage] class, and an event id names one message
/// across the whole product: an operator filtering the journal by id gets what the id promises.
/// </summary>
public class LogEventIdTests
{
    private static readonly (Type Log, int From, int To)[] Components =
    [
        (typeof(SharedLvm.Hosting.GrpcServer).Assembly.GetType("SharedLvm.Hosting.HostingLog")!, 1000, 1999),
        (typeof(SharedLvm.Os.Processes.ProcessRunner).Assembly.GetType("SharedLvm.Os.OsLog")!, 2000, 2999),
        (typeof(SharedLvm.Controller.ControllerHost).Assembly.GetType("SharedLvm.Controller.ControllerLog")!, 3000, 3999),
        (typeof(SharedLvm.Agent.AgentHost).Assembly.GetType("SharedLvm.Agent.AgentLog")!, 4000, 4999),
    ];

    [Fact]
    public void Event_ids_are_unique_and_in_their_components_range()
    {
        var seen = new Dictionary<int, string>();
        foreach (var (log, from, to) in Components)
        {
            foreach (var method in log.GetMethods(BindingFlags.Public | BindingFlags.Static))
            {
                var attribute = method.GetCustomAttribute<LoggerMessageAttribute>();
                Assert.NotNull(attribute);
                Assert.InRange(attribute.EventId, from, to);
                Assert.True(seen.TryAdd(attribute.EventId, $"{log.Name}.{method.Name}"), $"event id {attribute.EventId} is {seen.GetValueOrDefault(attribute.EventId)} and {log.Name}.{method.Name}");
            }
        }
    }

    [Fact]
    public void No_class_outside_the_log_classes_declares_log_messages()
    {
        foreach (var assembly in Components.Select(c => c.Log.Assembly))
        {
            var strays = assembly.GetTypes()
                .Where(t => !Components.Any(c => c.Log == t))
                .SelectMany(t => t.GetMethods(BindingFlags.NonPublic | BindingFlags.Public | BindingFlags.Static | BindingFlags.DeclaredOnly))
                .Where(m => m.GetCustomAttribute<LoggerMessageAttribute>() is not null)
                .Select(m => $"{m.DeclaringType!.Name}.{m.Name}");
            Assert.Empty(strays);
        }
    }
}
