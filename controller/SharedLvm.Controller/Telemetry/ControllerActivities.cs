using System.Diagnostics;

namespace SharedLvm.Controller.Telemetry;

/// <summary>The controller's spans: attach, detach and refresh of owners, with the agent calls under them.</summary>
public static class ControllerActivities
{
    public static readonly ActivitySource Source = new("SharedLvm.Controller");
}
