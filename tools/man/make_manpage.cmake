# Writes OUT: what `LM man` prints (every command, from its definition), then FILES.
# --config /dev/null: the defaults shown are the built-in ones, whatever the build host has
# in /etc/livemount.
execute_process(COMMAND ${LM} --config /dev/null man OUTPUT_VARIABLE page RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${LM} man failed (${rc})")
endif()
file(READ ${FILES} tail)
file(WRITE ${OUT} "${page}${tail}")
