using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;

namespace OnnxSlim.Cli;

/// <summary>
/// Help pages of subcommands without the root command's <c>&lt;MODEL&gt;</c>: System.CommandLine lists a parent's
/// arguments in a child's usage line and Arguments section, so `onnxslim bench --help` showed two <c>&lt;MODEL&gt;</c>
/// rows, one of them "ONNX model to prune", which `bench` does not take. The root argument is hidden while a
/// subcommand's page is written.
/// </summary>
public sealed class SubcommandHelp : SynchronousCommandLineAction
{
    private readonly HelpAction _help;
    private readonly RootCommand _root;

    private SubcommandHelp(HelpAction help, RootCommand root) => (_help, _root) = (help, root);

    public override bool ClearsParseErrors => true;

    public static void Install(RootCommand root)
    {
        HelpOption option = root.Options.OfType<HelpOption>().Single();
        option.Action = new SubcommandHelp((HelpAction)option.Action!, root);
    }

    public override int Invoke(ParseResult parseResult)
    {
        if (parseResult.CommandResult.Command == _root) return _help.Invoke(parseResult);
        List<Argument> shown = _root.Arguments.Where(a => !a.Hidden).ToList();
        shown.ForEach(a => a.Hidden = true);
        try { return _help.Invoke(parseResult); }
        finally { shown.ForEach(a => a.Hidden = false); }
    }
}
