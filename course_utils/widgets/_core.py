"""What every widget shares: an ``ipywidgets.interactive`` whose output is filled by the kernel."""


def _interactive(draw, **controls):
    """Like ``ipywidgets.interactive`` over ``draw``, but its output is captured in the kernel.

    ipywidgets captures the output with ``with self.out:``, a protocol in which the front end
    collects the outputs and sends them back to the kernel. Notebook runners play that front end
    (nbclient's OutputWidget, in ``jupyter nbconvert --execute`` and papermill) and send on the
    shell channel while they wait for the cell's reply; that send can swallow the reply's wake-up
    (jupyter_client sends through a blocking shadow of its asyncio socket), and the run then
    stalls until the cell's timeout (jupyter/nbclient#312). Setting the Output widget's
    ``outputs`` from the kernel needs no answer from the front end and shows the same.
    """
    import traceback

    import ipywidgets
    from IPython import get_ipython
    from IPython.utils.capture import capture_output

    class Interactive(ipywidgets.interactive):
        def update(self, *args):
            if get_ipython() is None:  # outside a notebook: print, as ipywidgets does
                return super().update(*args)
            show_figures = ipywidgets.widgets.interaction.show_inline_matplotlib_plots
            show_figures()  # figures drawn before stay out of the widget
            self.kwargs = {control._kwarg: control.get_interact_value()
                           for control in self.kwargs_widgets}
            try:
                with capture_output() as captured:
                    self.result = draw(**self.kwargs)
                    show_figures()
            except Exception:
                self.out.outputs = ({"output_type": "stream", "name": "stderr",
                                     "text": traceback.format_exc()},)
                return
            streams = [{"output_type": "stream", "name": name, "text": text}
                       for name, text in (("stdout", captured.stdout), ("stderr", captured.stderr))
                       if text]
            displays = [{"output_type": "display_data", "data": output.data,
                         "metadata": output.metadata} for output in captured.outputs]
            self.out.outputs = tuple(streams + displays)

    return Interactive(draw, **controls)
