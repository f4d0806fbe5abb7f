"""Figure rules (figures_modes, _fields,
_rotated, _hilbert, _rank, _series, _selection, _test, _demo, _summary): draw an experiment's PNGs."""
from precipmodes.plots import render
from precipmodes.plots.base import FigureOptions
from precipmodes.steps.rulescript import rule_run, workflow_rule


def main(smk):
    with rule_run(smk) as params:
        draw(smk, params)


FIGURE_RULES = ("figures_modes", "figures_fields", "figures_series", "figures_selection", "figures_test", "figures_rotated",
                "figures_rank", "figures_hilbert", "figures_demo", "figures_summary")


def draw(smk, params):
    rule = workflow_rule(smk, FIGURE_RULES)
    inputs, outputs = smk.input, dict(smk.output.items())
    experiment = params.get("experiment", {})  # only the fields this figure rule uses
    options = FigureOptions.from_config(params["figures"], params["domain"], params["source_kind"],
                                        smk.wildcards.experiment, params["accumulation"]["hours"])
    if rule == "figures_modes":
        render.draw_modes(inputs.svd, inputs.nmf, outputs, options)
    elif rule == "figures_fields":
        render.draw_fields(inputs.train, inputs.svd, inputs.nmf, outputs, options)
    elif rule == "figures_series":
        render.draw_series(inputs.svd, inputs.nmf, inputs.selection, outputs, options, experiment["train"])
    elif rule == "figures_selection":
        render.draw_selection(inputs.land_mask, inputs.selection, outputs, options,
                              params["land_mask"]["min_fraction"],
                              params["threshold"]["min_wet_fraction"],
                              {"train": experiment["train"], "test": experiment["test"]})
    elif rule == "figures_test":
        render.draw_test(inputs.evaluation, inputs.test, inputs.land_mask, inputs.selection, outputs, options,
                         experiment["test_windows"])
    elif rule == "figures_rotated":
        render.draw_rotated(inputs.svd, outputs["rotated_modes"], options)
    elif rule == "figures_rank":
        render.draw_rank(inputs.rank_selection, outputs["rank_choice"], options, inputs.get("nmf"))
    elif rule == "figures_hilbert":
        render.draw_hilbert(inputs.hilbert, outputs["hilbert_modes"], options)
    elif rule == "figures_demo":
        render.draw_demo(inputs.nmf, inputs.truth, inputs.evaluation, outputs["demo_match"], options)
    elif rule == "figures_summary":
        render.write_summary(inputs.svd, inputs.nmf, inputs.evaluation, outputs["json"], outputs["summary"], options)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake)
