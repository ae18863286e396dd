using SharedLvm.Cli;
using SharedLvm.Cli.Commands;

var root = SlvmCommands.Build(Console.Out, Console.Error);
var parse = root.Parse(args);
if (parse.Errors.Count > 0)
{
    foreach (var error in parse.Errors)
    {
        await Console.Error.WriteLineAsync("slvm: " + error.Message);
    }

    await Console.Error.WriteLineAsync("Run 'slvm --help' (or 'slvm <command> --help') for usage.");
    return Connection.UsageError;
}

return await parse.InvokeAsync();
