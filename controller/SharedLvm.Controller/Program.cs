using SharedLvm.Controller;
using SharedLvm.Hosting;

return await Daemon.RunAsync(ControllerHost.Spec, args, a => ControllerHost.Build(a));
