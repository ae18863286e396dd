using SharedLvm.Agent;
using SharedLvm.Hosting;

return await Daemon.RunAsync(AgentHost.Spec, args, a => AgentHost.Build(a));
